// metrics.go defines the agent's Prometheus metrics: replication counters
// and, through a collector, every counter of every app's segment.

package replication

import (
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gardenstate/gardenstate/shm"
)

type metrics struct {
	log        *slog.Logger
	reg        prometheus.Registerer
	cs         []prometheus.Collector
	sent       *prometheus.CounterVec
	applied    *prometheus.CounterVec
	dropped    *prometheus.CounterVec
	gaps       *prometheus.CounterVec
	aeRuns     *prometheus.CounterVec
	aeSent     *prometheus.CounterVec
	aeFetched  *prometheus.CounterVec
	refusedCnt *prometheus.CounterVec
	up         *prometheus.GaugeVec
	ackLag     prometheus.Histogram

	mu         sync.Mutex
	refusedLog []Refused
}

func newMetrics(a *Agent, reg prometheus.Registerer) *metrics {
	ns := "gardenstate"
	m := &metrics{
		log: a.log, reg: reg,
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "replication",
			Name: "sent_entries_total", Help: "Entries sent to a peer."}, []string{"peer"}),
		applied: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "replication",
			Name: "applied_entries_total", Help: "Entries from peers that changed the local segment."}, []string{"app"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "replication",
			Name: "dropped_batches_total", Help: "Batches not queued because a peer fell behind (anti-entropy repairs it)."}, []string{"peer"}),
		gaps: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "replication",
			Name: "feed_gaps_total", Help: "Times the change ring overtook the agent (a rescan followed)."}, []string{"app"}),
		aeRuns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "antientropy",
			Name: "runs_total", Help: "Anti-entropy comparisons started with a peer."}, []string{"peer"}),
		aeSent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "antientropy",
			Name: "sent_entries_total", Help: "Entries anti-entropy found the peer missing."}, []string{"peer"}),
		aeFetched: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "antientropy",
			Name: "fetched_entries_total", Help: "Entries anti-entropy found missing here."}, []string{"peer"}),
		refusedCnt: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: "replication",
			Name: "refused_peers_total", Help: "Peers refused for a configuration mismatch."}, []string{"reason"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: "replication",
			Name: "peer_connected", Help: "1 while the data stream to a peer is up."}, []string{"peer"}),
		ackLag: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: "replication",
			Name: "ack_lag_seconds", Help: "Time from sending a batch to its acknowledgement.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}),
	}
	m.cs = []prometheus.Collector{m.sent, m.applied, m.dropped, m.gaps, m.aeRuns, m.aeSent, m.aeFetched, m.refusedCnt, m.up, m.ackLag, &segmentCollector{a: a}}
	if reg != nil {
		for _, c := range m.cs {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *metrics) unregister() {
	if m.reg != nil {
		for _, c := range m.cs {
			m.reg.Unregister(c)
		}
	}
}

func (m *metrics) peerUp(peer string, up bool) {
	v := 0.0
	if up {
		v = 1
	}
	m.up.WithLabelValues(peer).Set(v)
}

// refused records a refusal seen on a data stream or in gossip, and logs
// it the first time.
func (m *metrics) refused(r Refused) {
	field := r.Reason
	for i, c := range field {
		if c == ':' {
			field = field[:i]
			break
		}
	}
	m.refusedCnt.WithLabelValues(field).Inc()
	m.mu.Lock()
	for i, x := range m.refusedLog {
		if x.Addr == r.Addr && x.Reason == r.Reason {
			m.refusedLog[i].At = r.At
			m.mu.Unlock()
			return
		}
	}
	m.refusedLog = append([]Refused{r}, m.refusedLog...)
	if len(m.refusedLog) > 64 {
		m.refusedLog = m.refusedLog[:64]
	}
	m.mu.Unlock()
	m.log.Error("refusing peer", "peer", r.Name, "addr", r.Addr, "reason", r.Reason)
}

// segmentCollector exports every app's segment counters.
type segmentCollector struct{ a *Agent }

func segMetric(name, help string, counter bool) *prometheus.Desc {
	suffix := ""
	if counter {
		suffix = "_total"
	}
	return prometheus.NewDesc("gardenstate_segment_"+name+suffix, help, []string{"app"}, nil)
}

var segMetrics = []struct {
	desc    *prometheus.Desc
	counter bool
	get     func(s segStats) float64
}{
	{segMetric("gets", "Reads.", true), true, func(s segStats) float64 { return float64(s.Gets) }},
	{segMetric("hits", "Reads that found the key.", true), true, func(s segStats) float64 { return float64(s.Hits) }},
	{segMetric("misses", "Reads that did not.", true), true, func(s segStats) float64 { return float64(s.Misses) }},
	{segMetric("sets", "Stores.", true), true, func(s segStats) float64 { return float64(s.Sets) }},
	{segMetric("deletes", "Deletes.", true), true, func(s segStats) float64 { return float64(s.Deletes) }},
	{segMetric("expirations", "Entries dropped at their deadline.", true), true, func(s segStats) float64 { return float64(s.Expirations) }},
	{segMetric("evictions", "Entries dropped to make room.", true), true, func(s segStats) float64 { return float64(s.Evictions) }},
	{segMetric("forced_evictions", "Live entries dropped to make room: the segment is too small.", true), true, func(s segStats) float64 { return float64(s.ForcedEvictions) }},
	{segMetric("lock_waits", "Stripe locks that had to wait.", true), true, func(s segStats) float64 { return float64(s.LockWaits) }},
	{segMetric("lock_timeouts", "Stripe lock waits that gave up.", true), true, func(s segStats) float64 { return float64(s.LockTimeouts) }},
	{segMetric("takeovers", "Stripe locks taken over from dead processes.", true), true, func(s segStats) float64 { return float64(s.Takeovers) }},
	{segMetric("repairs", "Stripes rebuilt after a takeover.", true), true, func(s segStats) float64 { return float64(s.Repairs) }},
	{segMetric("entries", "Entries, tombstones included.", false), false, func(s segStats) float64 { return float64(s.Entries) }},
	{segMetric("bytes_live", "Bytes of live entries.", false), false, func(s segStats) float64 { return float64(s.BytesLive) }},
	{segMetric("bytes_free", "Free arena bytes.", false), false, func(s segStats) float64 { return float64(s.BytesFree) }},
	{segMetric("last_seq", "Newest change-ring sequence.", false), false, func(s segStats) float64 { return float64(s.last) }},
	{segMetric("acked_seq", "Change-ring sequence acknowledged by the peers.", false), false, func(s segStats) float64 { return float64(s.acked) }},
}

func (c *segmentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range segMetrics {
		ch <- m.desc
	}
}

func (c *segmentCollector) Collect(ch chan<- prometheus.Metric) {
	for name, app := range c.a.apps {
		s := segStats{Stats: app.seg.Stats(), last: app.seg.LastSeq(), acked: app.seg.Acked()}
		for _, m := range segMetrics {
			t := prometheus.GaugeValue
			if m.counter {
				t = prometheus.CounterValue
			}
			ch <- prometheus.MustNewConstMetric(m.desc, t, m.get(s), name)
		}
	}
}

type segStats struct {
	shm.Stats
	last, acked uint64
}
