package main

import (
	"bufio"
	"bytes"
	"net"
	"testing"
	"time"
)

// FuzzHolderAnswers plays a holder that answers a forwarded command with
// arbitrary bytes (frames cut short, garbage, huge or missing exit codes):
// the forwarding side must never panic or hang, and must end with an
// exit code or an error once the holder closes the connection.
//
//	go test ./cmd/flowscript -run '^$' -fuzz FuzzHolderAnswers -fuzztime 10m -parallel 1
func FuzzHolderAnswers(f *testing.F) {
	f.Add([]byte("{\"ack\":true}\n{\"out\":\"hi\\n\"}\n{\"exit\":0}\n"))
	f.Add([]byte("{\"ack\":true}\n{\"err\":\"no\\n\"}\n{\"exit\":2}\n"))
	f.Add([]byte("{\"ack\":true}\n{\"out\":\"cut"))
	f.Add([]byte("{\"ack\":false}\n"))
	f.Add([]byte("{\"ack\":true}\n{\"exit\":99999999999999999999}\n"))
	f.Add([]byte("\n\n\n"))
	f.Fuzz(func(t *testing.T, answer []byte) {
		client, holder := net.Pipe()
		go func() {
			defer holder.Close()
			// read the request line, as the holder does, then answer
			if _, err := bufio.NewReader(holder).ReadBytes('\n'); err != nil {
				return
			}
			holder.Write(answer)
		}()
		var stdout, stderr bytes.Buffer
		done := make(chan struct{})
		go func() {
			defer close(done)
			converse(client, []string{"flowscript", "runs"}, &stdout, &stderr)
		}()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("converse did not end after the holder closed the connection (answer %q)", answer)
		}
	})
}
