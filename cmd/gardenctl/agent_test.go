package main

// agent_test.go runs peers, status and watch --agent against an HTTP
// server on loopback that answers with the agent's admin API contract, and
// checks what happens when the agent is not there or answers nonsense.

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const statusJSON = `{"node":"n1","cluster":"c","protocol":1,"uptime_seconds":12.5,
 "apps":[{"app":"x","segment":"/dev/shm/gardenstate-x","last_seq":10,"acked_seq":9,"lag_records":1}],"members":3}`

const peersJSON = `{"members":[{"name":"n2","addr":"127.0.0.2:7946","state":"alive","lag_ms":1.2,"queue_depth":0,"sent":100,"acked":100}],
 "refused":[{"name":"n9","addr":"127.0.0.9:7946","reason":"cluster: ours \"a\", theirs \"b\"","at":"2026-11-21T12:00:00Z"}]}`

// fakeAgent serves the admin API with the given bodies.
func fakeAgent(t *testing.T, status, peers string) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(status))
	})
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(peers))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func agentAddr(srv *httptest.Server) string { return strings.TrimPrefix(srv.URL, "http://") }

func TestStatusAndPeers(t *testing.T) {
	srv := fakeAgent(t, statusJSON, peersJSON)
	addr := agentAddr(srv)

	r := mustRun(t, "status", "--agent", addr)
	checkGolden(t, "status", strings.ReplaceAll(r.stdout, addr, "<AGENT>"))
	r = mustRun(t, "peers", "--agent", addr)
	checkGolden(t, "peers", r.stdout)

	var st agentStatus
	decodeJSON(t, mustRun(t, "status", "--agent", addr, "--json"), &st)
	if st.Node != "n1" || st.Members != 3 || len(st.Apps) != 1 || st.Apps[0].LagRecords != 1 || st.UptimeSeconds != 12.5 {
		t.Errorf("status --json decoded to %+v", st)
	}
	var ps agentPeers
	decodeJSON(t, mustRun(t, "peers", "--agent", addr, "--json"), &ps)
	if len(ps.Members) != 1 || ps.Members[0].LagMs != 1.2 || len(ps.Refused) != 1 || !strings.Contains(ps.Refused[0].Reason, `theirs "b"`) {
		t.Errorf("peers --json decoded to %+v", ps)
	}

	// The address may be a URL, and may come from the environment.
	mustRun(t, "status", "--agent", srv.URL+"/")
	r = cli{env: map[string]string{envAgent: addr}}.run(t, "peers")
	if r.code != 0 || !strings.Contains(r.stdout, "127.0.0.2:7946") {
		t.Errorf("peers with %s set: %v", envAgent, r)
	}
}

func TestAgentFieldsUnknownToUsAreKept(t *testing.T) {
	srv := fakeAgent(t, `{"node":"n1","apps":[],"members":1,"new_field":{"a":1}}`, `{"members":[],"refused":[]}`)
	var v map[string]any
	decodeJSON(t, mustRun(t, "status", "--agent", agentAddr(srv), "--json"), &v)
	if _, ok := v["new_field"]; !ok {
		t.Errorf("status --json dropped a field: %v", v)
	}
	r := mustRun(t, "peers", "--agent", agentAddr(srv))
	if !strings.Contains(r.stdout, "no peers") {
		t.Errorf("peers with no members: %v", r)
	}
}

func TestAgentNotAnswering(t *testing.T) {
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	for _, cmd := range []string{"status", "peers"} {
		r := gardenctl(t, cmd, "--agent", addr, "--timeout", "2s")
		if r.code != exitFail || !strings.Contains(r.stderr, "agent at "+addr+" did not answer") || r.stdout != "" {
			t.Errorf("%s against a closed port: %v", cmd, r)
		}
	}
}

func TestAgentBadAnswers(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/status", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("<html>not json</html>")) })
	mux.HandleFunc("/v1/peers", func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) })
	srv := httptest.NewServer(mux)
	defer srv.Close()
	addr := agentAddr(srv)
	r := gardenctl(t, "status", "--agent", addr)
	if r.code != exitFail || !strings.Contains(r.stderr, "not the expected JSON") || !strings.Contains(r.stderr, addr) {
		t.Errorf("status with an HTML answer: %v", r)
	}
	r = gardenctl(t, "peers", "--agent", addr)
	if r.code != exitFail || !strings.Contains(r.stderr, "500 Internal Server Error") || !strings.Contains(r.stderr, "boom") {
		t.Errorf("peers with a 500 answer: %v", r)
	}
}

func TestWatchWithAgentLag(t *testing.T) {
	path := newSegment(t, "x", nil)
	startWorker(t, path, "1")
	status, _ := json.Marshal(agentStatus{Node: "n1", Members: 1, Apps: []agentApp{
		{App: "other", Segment: "/dev/shm/gardenstate-other", LagRecords: 99},
		{App: "x", Segment: path, LastSeq: 50, AckedSeq: 8, LagRecords: 42},
	}})
	srv := fakeAgent(t, string(status), peersJSON)
	r := mustRun(t, "watch", "--segment", path, "--agent", agentAddr(srv), "--count", "2", "--interval", "20ms", "--json")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 2 {
		t.Fatalf("watch --count 2 printed %d lines: %v", len(lines), r)
	}
	for _, l := range lines {
		var s watchSample
		if err := json.Unmarshal([]byte(l), &s); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if s.LagRecords == nil || *s.LagRecords != 42 {
			t.Errorf("lag in %q, want 42", l)
		}
	}
	r = mustRun(t, "watch", "--segment", path, "--agent", agentAddr(srv), "--count", "1", "--interval", "20ms")
	if !strings.Contains(r.stdout, "LAG") || !strings.Contains(r.stdout, " 42\n") {
		t.Errorf("watch table with an agent: %v", r)
	}

	// An agent that does not know the segment, and no agent at all.
	other := fakeAgent(t, `{"node":"n1","apps":[]}`, `{}`)
	r = gardenctl(t, "watch", "--segment", path, "--agent", agentAddr(other), "--count", "1", "--interval", "20ms")
	if r.code != exitFail || !strings.Contains(r.stderr, "does not replicate") {
		t.Errorf("watch with an agent that does not know the segment: %v", r)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	r = gardenctl(t, "watch", "--segment", path, "--agent", addr, "--count", "1", "--interval", "20ms")
	if r.code != exitFail || !strings.Contains(r.stderr, addr) {
		t.Errorf("watch with no agent: %v", r)
	}
}
