package main

// usage_test.go checks the command line itself: how the segment is chosen
// (flags, environment, conflicts), usage errors and their exit status,
// help with examples for every command, and shell completion.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSegmentSelection(t *testing.T) {
	path, _ := fixture(t)
	dir := filepath.Dir(path)
	cases := []struct {
		name string
		env  map[string]string
		args []string
		code int
		msg  string
	}{
		{"flag segment", nil, []string{"--segment", path}, 0, ""},
		{"short flags", nil, []string{"-a", "shop", "--dir", dir}, 0, ""},
		{"env segment", map[string]string{envSegment: path}, nil, 0, ""},
		{"env app", map[string]string{envApp: "shop"}, []string{"--dir", dir}, 0, ""},
		{"flag beats env", map[string]string{envSegment: "/nonexistent"}, []string{"--segment", path}, 0, ""},
		{"app flag beats segment env", map[string]string{envSegment: "/nonexistent"}, []string{"--app", "shop", "--dir", dir}, 0, ""},
		{"both flags", nil, []string{"--segment", path, "--app", "shop"}, exitUsage, "not both"},
		{"both env", map[string]string{envSegment: path, envApp: "shop"}, nil, exitUsage, "both set"},
		{"none", nil, []string{"--dir", dir}, exitUsage, "applications with a segment in " + dir + ": shop"},
		{"bad app", nil, []string{"--app", "../etc"}, exitUsage, "not an application name"},
		{"missing app", nil, []string{"--app", "nope", "--dir", dir}, exitFail, "no segment at " + filepath.Join(dir, "gardenstate-nope")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := cli{env: c.env}.run(t, append([]string{"ls"}, c.args...)...)
			if r.code != c.code || !strings.Contains(r.stderr, c.msg) || (c.code == 0) != strings.Contains(r.stdout, "sess-alice") {
				t.Errorf("ls %v with env %v: want exit %d and %q: %v", c.args, c.env, c.code, c.msg, r)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	path, _ := fixture(t)
	cases := []struct {
		args []string
		msg  string
	}{
		{[]string{"nosuchcommand"}, "unknown command"},
		{[]string{"ls", "--nosuchflag"}, "unknown flag"},
		{[]string{"get", "--segment", path}, "get needs the id"},
		{[]string{"get", "--segment", path, "a", "b"}, "takes 1 argument"},
		{[]string{"get", "--segment", path, "--raw", "--json", "x"}, "not both"},
		{[]string{"get", "--segment", path, `"\q"`}, "not a valid quoted string"},
		{[]string{"ls", "--segment", path, "--limit", "-1"}, "--limit"},
		{[]string{"watch", "--segment", path, "--interval", "0s"}, "--interval"},
		{[]string{"rm", "--segment", path, "sess-alice"}, "--yes"},
		{[]string{"flush", "--segment", path}, "--yes"},
		{[]string{"dump", "--segment", path}, "dump needs the file"},
		{[]string{"stat", "extra"}, "unknown command"},
	}
	for _, c := range cases {
		r := gardenctl(t, c.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, c.msg) || r.stdout != "" {
			t.Errorf("gardenctl %v: want exit 2 and %q: %v", c.args, c.msg, r)
		}
	}
	// Nothing was deleted by the refused commands.
	mustRun(t, "get", "--segment", path, "sess-alice")
}

func TestHelpHasExamples(t *testing.T) {
	root := newApp(nil, nil).rootCommand()
	for _, c := range root.Commands() {
		r := mustRun(t, c.Name(), "--help")
		if !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%s --help has no examples", c.Name())
		}
		if c.Name() != "segments" && c.Name() != "peers" && c.Name() != "status" && !strings.Contains(r.stdout, "--json") {
			t.Errorf("%s --help has no --json", c.Name())
		}
	}
	r := gardenctl(t)
	if r.code != 0 || !strings.Contains(r.stdout, "Available Commands") {
		t.Errorf("gardenctl with no arguments: %v", r)
	}
}

func TestCompletion(t *testing.T) {
	for _, sh := range []string{"bash", "zsh", "fish", "powershell"} {
		r := mustRun(t, "completion", sh)
		if !strings.Contains(r.stdout, "gardenctl") {
			t.Errorf("completion %s printed no script", sh)
		}
	}
	path, _ := fixture(t)
	r := mustRun(t, "__complete", "get", "--segment", path, "sess-")
	if !strings.Contains(r.stdout, "sess-alice\nsess-bob\n") || strings.Contains(r.stdout, "sess-carol") {
		t.Errorf("completing keys: %v", r)
	}
	r = mustRun(t, "__complete", "stat", "--dir", filepath.Dir(path), "--app", "")
	if !strings.HasPrefix(r.stdout, "shop\n") {
		t.Errorf("completing applications: %v", r)
	}
}

// TestRun goes through run, main's entry point, with the real environment.
func TestRun(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"stat", "--help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "Usage:") {
		t.Errorf("run stat --help: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	if code := run([]string{"stat", "--segment", filepath.Join(t.TempDir(), "none")}, &out, &errb); code != exitFail || !strings.Contains(errb.String(), "no segment at") {
		t.Errorf("run stat of a missing segment: exit %d: %s", code, errb.String())
	}
}

// TestSegmentsSkipsSidecarFiles: garden's janitor lock file beside a
// segment is not listed as a broken segment.
func TestSegmentsSkipsSidecarFiles(t *testing.T) {
	path := newSegment(t, "shop", nil)
	if err := os.WriteFile(path+".janitor", nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r := mustRun(t, "segments", "--dir", filepath.Dir(path), "--json")
	var got []map[string]any
	decodeJSON(t, r, &got)
	if len(got) != 1 {
		t.Fatalf("segments listed %d files, want only the segment: %s", len(got), r.stdout)
	}
}
