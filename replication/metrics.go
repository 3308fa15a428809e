// metrics.go defines the agent's Prometheus metrics: replication counters
// and, through a collector, every counter of every app's segment.

package replication

import (
	"log/slog"
	"strings"
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
	const ns = "gardenstate"
	counter := func(subsystem, name, help, label string) *prometheus.CounterVec {
		return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: subsystem, Name: name, Help: help}, []string{label})
	}
	m := &metrics{
		log: a.log, reg: reg,
		sent:       counter("replication", "sent_entries_total", "Entries sent to a peer.", "peer"),
		applied:    counter("replication", "applied_entries_total", "Entries from peers that changed the local segment.", "app"),
		dropped:    counter("replication", "dropped_batches_total", "Batches not queued because a peer fell behind (anti-entropy repairs it).", "peer"),
		gaps:       counter("replication", "feed_gaps_total", "Times the change ring overtook the agent (it then sent what changed from the segment itself).", "app"),
		aeRuns:     counter("antientropy", "runs_total", "Anti-entropy comparisons started with a peer.", "peer"),
		aeSent:     counter("antientropy", "sent_entries_total", "Entries anti-entropy found the peer missing.", "peer"),
		aeFetched:  counter("antientropy", "fetched_entries_total", "Entries anti-entropy found missing here.", "peer"),
		refusedCnt: counter("replication", "refused_peers_total", "Peers refused for a configuration mismatch.", "reason"),
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
	field, _, _ := strings.Cut(r.Reason, ":")
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

// segMetric is one exported segment figure: a counter (named *_total)
// or a gauge.
type segMetric struct {
	desc *prometheus.Desc
	kind prometheus.ValueType
	get  func(s segStats) float64
}

func counterOf(name, help string, get func(segStats) float64) segMetric {
	return segMetric{prometheus.NewDesc("gardenstate_segment_"+name+"_total", help, []string{"app"}, nil), prometheus.CounterValue, get}
}

func gaugeOf(name, help string, get func(segStats) float64) segMetric {
	return segMetric{prometheus.NewDesc("gardenstate_segment_"+name, help, []string{"app"}, nil), prometheus.GaugeValue, get}
}

var segMetrics = []segMetric{
	counterOf("gets", "Reads.", func(s segStats) float64 { return float64(s.Gets) }),
	counterOf("hits", "Reads that found the key.", func(s segStats) float64 { return float64(s.Hits) }),
	counterOf("misses", "Reads that did not.", func(s segStats) float64 { return float64(s.Misses) }),
	counterOf("sets", "Stores.", func(s segStats) float64 { return float64(s.Sets) }),
	counterOf("deletes", "Deletes.", func(s segStats) float64 { return float64(s.Deletes) }),
	counterOf("expirations", "Entries dropped at their deadline.", func(s segStats) float64 { return float64(s.Expirations) }),
	counterOf("evictions", "Entries dropped to make room.", func(s segStats) float64 { return float64(s.Evictions) }),
	counterOf("forced_evictions", "Live entries dropped to make room: the segment is too small.", func(s segStats) float64 { return float64(s.ForcedEvictions) }),
	counterOf("lock_waits", "Stripe locks that had to wait.", func(s segStats) float64 { return float64(s.LockWaits) }),
	counterOf("lock_timeouts", "Stripe lock waits that gave up.", func(s segStats) float64 { return float64(s.LockTimeouts) }),
	counterOf("takeovers", "Stripe locks taken over from dead processes.", func(s segStats) float64 { return float64(s.Takeovers) }),
	counterOf("repairs", "Stripes rebuilt after a takeover.", func(s segStats) float64 { return float64(s.Repairs) }),
	gaugeOf("entries", "Entries, tombstones included.", func(s segStats) float64 { return float64(s.Entries) }),
	gaugeOf("bytes_live", "Bytes of live entries.", func(s segStats) float64 { return float64(s.BytesLive) }),
	gaugeOf("bytes_free", "Free arena bytes.", func(s segStats) float64 { return float64(s.BytesFree) }),
	gaugeOf("last_seq", "Newest change-ring sequence.", func(s segStats) float64 { return float64(s.last) }),
	gaugeOf("acked_seq", "Change-ring sequence acknowledged by the peers.", func(s segStats) float64 { return float64(s.acked) }),
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
			ch <- prometheus.MustNewConstMetric(m.desc, m.kind, m.get(s), name)
		}
	}
}

type segStats struct {
	shm.Stats
	last, acked uint64
}
