package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/flowscript/flowscript"
)

// embedHost stands in, for the scripts, for a program that embeds
// flowscript and serves the CLI (flowscript-host DB): it opens the
// database, answers the CLI's commands with the root package's own
// answers (Engine.Serve with no Commands), and closes on SIGTERM or
// SIGINT.
func embedHost(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: flowscript-host DB")
		return 2
	}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	eng, err := flowscript.Open(args[0], flowscript.Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer eng.Close()
	if err := eng.Serve(flowscript.ServeOptions{}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("serving")
	<-stop
	return 0
}
