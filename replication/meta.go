// meta.go defines the metadata every agent announces through membership,
// and the comparison that refuses a mismatched peer, naming the difference.

package replication

import (
	"fmt"
	"slices"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/gardenstate/gardenstate/internal/msgpackcheck"
	"github.com/gardenstate/gardenstate/shm"
)

// NodeMeta is what an agent announces about itself. It must fit in
// memberlist's 512 bytes of node metadata.
type NodeMeta struct {
	Protocol int       `msgpack:"p"`
	Cluster  string    `msgpack:"c"`
	KeyFP    string    `msgpack:"k"` // fingerprint of the farm key (not the key)
	DataAddr string    `msgpack:"d"` // where its data streams listen
	Apps     []AppMeta `msgpack:"a"`
}

// AppMeta is the part of an application's segment layout that must agree
// across the farm: a value one host accepts must fit on every other.
type AppMeta struct {
	Name     string `msgpack:"n"`
	Format   int    `msgpack:"f"`
	MaxValue int    `msgpack:"v"`
	MaxKey   int    `msgpack:"k"`
}

func (a AppMeta) String() string {
	return fmt.Sprintf("format %d, max value %d, max key %d", a.Format, a.MaxValue, a.MaxKey)
}

func appMeta(name string, s *shm.Segment) AppMeta {
	i := s.Info()
	return AppMeta{Name: name, Format: i.FormatVersion, MaxValue: i.MaxValue, MaxKey: i.MaxKey}
}

func (m NodeMeta) encode() ([]byte, error) { return msgpack.Marshal(m) }

func decodeMeta(b []byte) (NodeMeta, error) {
	var m NodeMeta
	if len(b) == 0 {
		return m, fmt.Errorf("%w: no node metadata (not a gardend?)", ErrFrame)
	}
	if err := msgpackcheck.Check(b, maxNesting); err != nil {
		return m, fmt.Errorf("%w: node metadata: %v", ErrFrame, err)
	}
	if err := msgpack.Unmarshal(b, &m); err != nil {
		return m, fmt.Errorf("%w: node metadata: %v", ErrFrame, err)
	}
	return m, nil
}

// Mismatch names one field in which a peer differs from us.
type Mismatch struct {
	Field       string
	Ours, Their string
}

func (m Mismatch) Error() string {
	return fmt.Sprintf("%s differs: ours %s, theirs %s", m.Field, m.Ours, m.Their)
}

// compareMeta returns the first difference that makes theirs unusable as a
// peer of ours, or nil.
func compareMeta(ours, theirs NodeMeta) *Mismatch {
	q := func(s string) string { return fmt.Sprintf("%q", s) }
	switch {
	case ours.Protocol != theirs.Protocol:
		return &Mismatch{"protocol version", fmt.Sprint(ours.Protocol), fmt.Sprint(theirs.Protocol)}
	case ours.Cluster != theirs.Cluster:
		return &Mismatch{"cluster", q(ours.Cluster), q(theirs.Cluster)}
	case ours.KeyFP != theirs.KeyFP:
		return &Mismatch{"farm key (fingerprint)", ours.KeyFP, theirs.KeyFP}
	}
	names := func(as []AppMeta) []string {
		var n []string
		for _, a := range as {
			n = append(n, a.Name)
		}
		slices.Sort(n)
		return n
	}
	if on, tn := names(ours.Apps), names(theirs.Apps); !slices.Equal(on, tn) {
		return &Mismatch{"applications", "[" + strings.Join(on, " ") + "]", "[" + strings.Join(tn, " ") + "]"}
	}
	for _, a := range ours.Apps {
		for _, b := range theirs.Apps {
			if a.Name == b.Name && a != b {
				return &Mismatch{"layout of app " + q(a.Name), a.String(), b.String()}
			}
		}
	}
	return nil
}
