package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
	"github.com/rogpeppe/go-internal/testscript"
)

// natsScripts are the scripts of testdata/script that TestScriptsNATS
// runs again with the database on NATS JetStream: those about runs, their
// records, trees, history, logs, cancel, rerun, sub-workflows and watch.
// (The others are about the command line itself, the Badger directory,
// its socket, or steps and scripts whatever the store.) Lines that only
// hold for a Badger directory are marked [!nats] in them.
var natsScripts = []string{
	"run_basic",
	"run_inspect",
	"run_details",
	"run_failure",
	"run_params",
	"tree_history_timeout",
	"cancel",
	"rerun",
	"rerun_modes",
	"subworkflows",
	"subworkflow_errors",
	"watch",
	"logs_live",
	"logs_served",
	"for_each",
	"loop_and_limit",
	"nats_store",
	"nats_owner",
}

// scriptCondition answers the scripts' [nats] condition: whether the
// database is on NATS.
func scriptCondition(nats bool) func(string) (bool, error) {
	return func(cond string) (bool, error) {
		if cond == "nats" {
			return nats, nil
		}
		return false, fmt.Errorf("unknown condition %q", cond)
	}
}

// TestScriptsNATS runs natsScripts with $FLOWSCRIPT_STORE naming a stream
// of its own for each script on one JetStream server that this test
// starts in-process (listening on loopback, for the flowscript processes
// the scripts start). The server does not sync every write: these tests
// are about what the commands do, not about power loss.
func TestScriptsNATS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a NATS server and many processes")
	}
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	srv, err := natsserver.NewServer(&natsserver.Options{
		JetStream:  true,
		StoreDir:   dir,
		Host:       "127.0.0.1",
		Port:       natsserver.RANDOM_PORT,
		NoLog:      true,
		NoSigs:     true,
		MaxPayload: 8 << 20,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	// (the scripts run in parallel subtests, after this function returns)
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	url := "nats://" + srv.Addr().String()
	var files []string
	for _, name := range natsScripts {
		files = append(files, filepath.Join("testdata", "script", name+".txtar"))
	}
	var n atomic.Int64
	testscript.Run(t, testscript.Params{
		Files:         files,
		UpdateScripts: os.Getenv("FLOWSCRIPT_UPDATE") == "1",
		Cmds:          scriptCmds,
		Condition:     scriptCondition(true),
		Setup: func(env *testscript.Env) error {
			env.Setenv("EXAMPLES", examples)
			env.Setenv("NATS_URL", url)
			env.Setenv("NATS_DIR", dir)
			env.Setenv("FLOWSCRIPT_STORE", fmt.Sprintf("%s/script%d", url, n.Add(1)))
			return nil
		},
	})
}
