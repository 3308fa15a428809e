// suite.go defines a suite, the environment every suite runs in, and the
// list of suites in the order a run goes through them.

package main

import "context"

// suite is one comparison the harness runs.
type suite struct {
	name  string
	title string
	// method says how the suite measures, for the report.
	method func(p params) string
	run    func(ctx context.Context, e *env, r rec) error
}

// env is what a suite gets from the harness.
type env struct {
	p     params
	tools map[string]Tool
	prog  *progress
}

// allSuites in the order they run.
func allSuites() []suite {
	return []suite{kvSuite, procsSuite, httpSuite, replicationSuite, crashSuite}
}

func suiteNames() []string {
	var names []string
	for _, s := range allSuites() {
		names = append(names, s.name)
	}
	return names
}
