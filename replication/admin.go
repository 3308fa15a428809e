// admin.go serves the agent's admin API: Prometheus metrics, health, status
// and peers as JSON, and the fetch endpoint garden uses for read-your-writes.

package replication

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gardenstate/gardenstate/shm"
)

// Status is the body of GET /v1/status.
type Status struct {
	Node          string      `json:"node"`
	Cluster       string      `json:"cluster"`
	Protocol      int         `json:"protocol"`
	UptimeSeconds float64     `json:"uptime_seconds"`
	DataAddr      string      `json:"data_addr"`
	GossipAddr    string      `json:"gossip_addr,omitempty"`
	Apps          []AppStatus `json:"apps"`
	Members       int         `json:"members"`
}

// AppStatus is one app in Status.
type AppStatus struct {
	App        string `json:"app"`
	Segment    string `json:"segment"`
	LastSeq    uint64 `json:"last_seq"`
	AckedSeq   uint64 `json:"acked_seq"`
	LagRecords uint64 `json:"lag_records"`
	// ProcessedSeq is the change-ring sequence up to which the agent has
	// handed every change to its peers' queues.
	ProcessedSeq uint64 `json:"processed_seq"`
	Entries      uint64 `json:"entries"`
}

// PeerStatus is one member in Peers.
type PeerStatus struct {
	Name       string  `json:"name"`
	Addr       string  `json:"addr"`
	State      string  `json:"state"`
	LagMs      float64 `json:"lag_ms"`
	QueueDepth int     `json:"queue_depth"`
	Sent       uint64  `json:"sent"`
	Acked      uint64  `json:"acked"`
	Dropped    uint64  `json:"dropped"`
}

// Peers is the body of GET /v1/peers.
type Peers struct {
	Members []PeerStatus `json:"members"`
	Refused []Refused    `json:"refused"`
}

// Status reports the agent's state.
func (a *Agent) Status() Status {
	s := Status{
		Node: a.cfg.NodeName, Cluster: a.cfg.Cluster, Protocol: ProtocolVersion,
		UptimeSeconds: time.Since(a.started).Seconds(), DataAddr: a.meta.DataAddr, GossipAddr: a.GossipAddr(),
		Members: len(a.mem.Members()),
	}
	for name, app := range a.apps {
		last, acked := app.seg.LastSeq(), app.seg.Acked()
		as := AppStatus{App: name, Segment: app.seg.Path(), LastSeq: last, AckedSeq: acked,
			ProcessedSeq: app.processed.Load() - 1, Entries: app.seg.Stats().Entries}
		if last > acked {
			as.LagRecords = last - acked
		}
		s.Apps = append(s.Apps, as)
	}
	sort.Slice(s.Apps, func(i, j int) bool { return s.Apps[i].App < s.Apps[j].App })
	return s
}

// Peers reports the members and the refused peers.
func (a *Agent) Peers() Peers {
	var out Peers
	for _, p := range a.peerList() {
		p.mu.Lock()
		st := PeerStatus{Name: p.name, Addr: p.addr, State: "connecting", LagMs: p.lagEWMA * 1000,
			QueueDepth: len(p.queue), Sent: p.sent.Load(), Acked: p.ackedCount.Load(), Dropped: p.dropped.Load()}
		if p.connected {
			st.State = "alive"
			if len(p.lagFrom) > 0 {
				st.State = "catching-up"
			}
		}
		p.mu.Unlock()
		out.Members = append(out.Members, st)
	}
	sort.Slice(out.Members, func(i, j int) bool { return out.Members[i].Name < out.Members[j].Name })
	a.metrics.mu.Lock()
	out.Refused = append(out.Refused, a.metrics.refusedLog...)
	a.metrics.mu.Unlock()
	if out.Refused == nil {
		out.Refused = []Refused{}
	}
	if out.Members == nil {
		out.Members = []PeerStatus{}
	}
	return out
}

// AdminHandler serves the admin API. gatherer provides /metrics (nil: no
// metrics endpoint).
func (a *Agent) AdminHandler(gatherer prometheus.Gatherer) http.Handler {
	mux := http.NewServeMux()
	if gatherer != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(gatherer, promhttp.HandlerOpts{}))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if a.ctx == nil || a.ctx.Err() != nil {
			http.Error(w, "stopped", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.Status()) })
	mux.HandleFunc("GET /v1/peers", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, a.Peers()) })
	mux.HandleFunc("GET /v1/fetch", a.serveFetch)
	return mux
}

// serveFetch: GET /v1/fetch?app=A&key=K&version=T.N[&timeout=100ms]. K is
// base64url (no padding); the version is the cookie's, time.node. 200 when
// the local copy is at least that version, 504 when it did not arrive in
// time, 400 for a malformed request.
func (a *Agent) serveFetch(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	key, err := base64.RawURLEncoding.DecodeString(q.Get("key"))
	if err != nil || len(key) == 0 {
		http.Error(w, "key: want base64url without padding", http.StatusBadRequest)
		return
	}
	want, err := ParseVersion(q.Get("version"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	timeout := 100 * time.Millisecond
	if t := q.Get("timeout"); t != "" {
		if timeout, err = time.ParseDuration(t); err != nil || timeout <= 0 || timeout > 10*time.Second {
			http.Error(w, "timeout: want a duration up to 10s", http.StatusBadRequest)
			return
		}
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	if err := a.Fetch(ctx, q.Get("app"), key, want); err != nil {
		code := http.StatusGatewayTimeout
		if ctx.Err() == nil {
			code = http.StatusNotFound
		}
		http.Error(w, err.Error(), code)
		return
	}
	fmt.Fprintln(w, "ok")
}

// ParseVersion parses "time.node" as garden writes a version.
func ParseVersion(s string) (shm.Version, error) {
	t, n, ok := strings.Cut(s, ".")
	if !ok {
		return shm.Version{}, fmt.Errorf("version %q: want time.node", s)
	}
	tv, err1 := strconv.ParseUint(t, 10, 64)
	nv, err2 := strconv.ParseUint(n, 10, 32)
	if err1 != nil || err2 != nil {
		return shm.Version{}, fmt.Errorf("version %q: want two decimal numbers", s)
	}
	return shm.Version{Time: tv, Node: uint32(nv)}, nil
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
