package flowscript

import "os"

// A SecretSource gives the values of the secrets workflows declare
// (workflow(secrets=[...])). Values are resolved only inside running
// steps, and are masked as *** wherever they would leave the engine.
// A host plugs in its vault here.
type SecretSource interface {
	// LookupSecret returns the value of the named secret, and whether it
	// has one.
	LookupSecret(name string) (value string, ok bool)
}

// SecretMap is a fixed set of secret values.
type SecretMap map[string]string

// LookupSecret implements SecretSource.
func (m SecretMap) LookupSecret(name string) (string, bool) {
	v, ok := m[name]
	return v, ok
}

// SecretFunc adapts a function to a SecretSource.
type SecretFunc func(name string) (string, bool)

// LookupSecret implements SecretSource.
func (f SecretFunc) LookupSecret(name string) (string, bool) { return f(name) }

// EnvSecrets reads secrets from the environment variables of the same
// names; an empty variable counts as unset.
var EnvSecrets SecretSource = SecretFunc(func(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	return v, ok && v != ""
})

// Secrets chains sources: the first that has a value wins.
func Secrets(sources ...SecretSource) SecretSource {
	return SecretFunc(func(name string) (string, bool) {
		for _, s := range sources {
			if s == nil {
				continue
			}
			if v, ok := s.LookupSecret(name); ok {
				return v, true
			}
		}
		return "", false
	})
}

func lookupOf(s SecretSource) func(string) (string, bool) {
	if s == nil {
		return nil
	}
	return s.LookupSecret
}
