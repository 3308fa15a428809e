// child.go re-runs the harness's own binary as a child process in one of
// its hidden modes (a worker of the procs suite, the lock holder the crash
// suite kills, the HTTP server, the echo server of the loopback round
// trip), selected by an environment variable, with its configuration as
// JSON in another.

package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

const (
	// childEnv names the mode a child runs in.
	childEnv = "GARDENSTATE_BENCH_CHILD"
	// childConfigEnv holds the child's configuration, as JSON.
	childConfigEnv = "GARDENSTATE_BENCH_CONFIG"
)

// childModes are the hidden modes; each reads its configuration and
// returns an exit status.
var childModes = map[string]func(config []byte) int{
	"procs":      procsChild,
	"crash":      crashChild,
	"httpserver": httpServerChild,
	"echo":       echoChild,
}

// childMain runs the mode named in the environment. It reports false when
// this process is not a child.
func childMain() (code int, isChild bool) {
	mode, ok := os.LookupEnv(childEnv)
	if !ok {
		return 0, false
	}
	f := childModes[mode]
	if f == nil {
		fmt.Fprintf(os.Stderr, "bench: unknown child mode %q\n", mode)
		return 2, true
	}
	return f([]byte(os.Getenv(childConfigEnv))), true
}

// startChild starts this binary in mode with config.
func startChild(mode string, config any) (*proc, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	b, err := json.Marshal(config)
	if err != nil {
		return nil, err
	}
	// A test binary would run its tests without a filter; the child mode
	// takes over before flags are read, so the filter is only a guard.
	cmd := exec.Command(exe, "-test.run=^$")
	if !strings.HasSuffix(exe, ".test") {
		cmd = exec.Command(exe)
	}
	cmd.Env = append(childEnviron(), childEnv+"="+mode, childConfigEnv+"="+string(b),
		// A child built with -race would otherwise sleep a second at exit.
		"GORACE="+strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	return startProc(mode+" child", cmd)
}

// childEnviron is this process's environment without the child variables.
func childEnviron() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, childEnv+"=") || strings.HasPrefix(kv, childConfigEnv+"=") || strings.HasPrefix(kv, "GORACE=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// readChildConfig decodes a child's configuration, or says on stderr why
// it cannot.
func readChildConfig(config []byte, v any) bool {
	if err := json.Unmarshal(config, v); err != nil {
		fmt.Fprintf(os.Stderr, "bench child: bad %s: %v\n", childConfigEnv, err)
		return false
	}
	return true
}
