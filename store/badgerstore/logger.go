package badgerstore

import (
	"fmt"
	"strings"

	"github.com/hashicorp/go-hclog"
)

// logger adapts an hclog.Logger to badger.Logger. Badger's Infof is
// chatter about its own housekeeping (compactions, flushes, replay) and
// goes to Debug; its Debugf fires on every write and goes to Trace.
type logger struct{ l hclog.Logger }

func newLogger(l hclog.Logger) *logger { return &logger{l: l.Named("badger")} }

func (a *logger) Errorf(format string, args ...any) {
	if a.l.IsError() {
		a.l.Error(message(format, args))
	}
}

func (a *logger) Warningf(format string, args ...any) {
	if a.l.IsWarn() {
		a.l.Warn(message(format, args))
	}
}

func (a *logger) Infof(format string, args ...any) {
	if a.l.IsDebug() {
		a.l.Debug(message(format, args))
	}
}

func (a *logger) Debugf(format string, args ...any) {
	if a.l.IsTrace() {
		a.l.Trace(message(format, args))
	}
}

// message formats a Badger log line, dropping the trailing newlines
// Badger puts on most of them.
func message(format string, args []any) string {
	return strings.TrimRight(fmt.Sprintf(format, args...), "\n ")
}
