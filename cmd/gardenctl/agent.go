// agent.go is the client of the agent's admin API: the JSON it answers on
// /v1/status and /v1/peers, and how failures to reach it are reported.

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	neturl "net/url"
	"strings"
)

// maxAgentResponse bounds what is read from the agent.
const maxAgentResponse = 16 << 20

// agentStatus is GET /v1/status.
type agentStatus struct {
	Node          string     `json:"node"`
	Cluster       string     `json:"cluster"`
	Protocol      int        `json:"protocol"`
	UptimeSeconds float64    `json:"uptime_seconds"`
	Apps          []agentApp `json:"apps"`
	Members       int        `json:"members"`
}

// agentApp is one application the agent replicates.
type agentApp struct {
	App        string `json:"app"`
	Segment    string `json:"segment"`
	LastSeq    uint64 `json:"last_seq"`
	AckedSeq   uint64 `json:"acked_seq"`
	LagRecords uint64 `json:"lag_records"`
}

// agentPeers is GET /v1/peers.
type agentPeers struct {
	Members []agentMember  `json:"members"`
	Refused []agentRefusal `json:"refused"`
}

// agentMember is a peer in the cluster.
type agentMember struct {
	Name       string  `json:"name"`
	Addr       string  `json:"addr"`
	State      string  `json:"state"`
	LagMs      float64 `json:"lag_ms"`
	QueueDepth int64   `json:"queue_depth"`
	Sent       uint64  `json:"sent"`
	Acked      uint64  `json:"acked"`
}

// agentRefusal is a peer refused at join, and why.
type agentRefusal struct {
	Name   string `json:"name"`
	Addr   string `json:"addr"`
	Reason string `json:"reason"`
	At     string `json:"at"`
}

// agentURL turns --agent (host:port, or a URL) into the URL of path.
func agentURL(addr, path string) string {
	base := addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return strings.TrimRight(base, "/") + path
}

// agentGet fetches path from the agent into v and also returns the body as
// it came. Every error names the address tried.
func (a *app) agentGet(ctx context.Context, path string, v any) ([]byte, error) {
	if a.timeout <= 0 {
		return nil, usageErrorf("--timeout %s: must be positive", a.timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	url := agentURL(a.agent, path)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("bad agent address %q: %v", a.agent, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.client.Do(req)
	if err != nil {
		why := err.Error()
		var ue *neturl.Error
		if errors.As(err, &ue) {
			why = ue.Err.Error() // without the method and URL, named below
		}
		if errors.Is(err, context.DeadlineExceeded) {
			why = fmt.Sprintf("no answer within %s", a.timeout)
		}
		return nil, fmt.Errorf("agent at %s did not answer (GET %s: %s); is gardend running there? set --agent or %s", a.agent, url, why, envAgent)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAgentResponse))
	if err != nil {
		return nil, fmt.Errorf("agent at %s: reading GET %s: %v", a.agent, url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("agent at %s answered GET %s with %s: %s", a.agent, url, resp.Status, snippet(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return nil, fmt.Errorf("agent at %s answered GET %s with something that is not the expected JSON (%v): %s", a.agent, url, err, snippet(body))
	}
	return body, nil
}

// snippet is the start of a response body, for error messages.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	if s == "" {
		return "(empty body)"
	}
	return fmt.Sprintf("%q", s)
}

// writeAgentJSON prints the agent's answer as it came, indented, so fields
// this gardenctl does not know are kept.
func writeAgentJSON(w io.Writer, body []byte) error {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return err
	}
	return writeJSON(w, v)
}
