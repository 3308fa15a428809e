// keys.go derives every secret an agent uses from the one farm key, so that
// one 32-byte secret configures a farm: the gossip encryption key, the TLS
// identity of the data streams, and a public fingerprint to compare.

package replication

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"os"
	"time"

	"github.com/gardenstate/gardenstate/internal/farmkey"
)

// KeySize is the size of a farm key.
const KeySize = farmkey.Size

// ErrKey is returned when a farm key is missing, malformed or short.
var ErrKey = errors.New("replication: bad farm key")

// ParseKey decodes a farm key: 32 bytes in standard base64 on one line, as
// `openssl rand -base64 32` or `gardend keygen` print it.
func ParseKey(text string) ([]byte, error) {
	k, err := farmkey.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("%w: %v (generate one with `gardend keygen`)", ErrKey, err)
	}
	return k, nil
}

// ReadKeyFile reads a farm key file.
func ReadKeyFile(path string) ([]byte, error) {
	k, err := farmkey.Read(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return k, nil
}

func derive(key []byte, purpose string, n int) []byte {
	b, err := hkdf.Key(sha256.New, key, nil, "gardenstate "+purpose, n)
	if err != nil {
		panic(err) // only for n too large, which no caller asks
	}
	return b
}

// gossipKey is memberlist's AES-256 key.
func gossipKey(key []byte) []byte { return derive(key, "gossip", 32) }

// keyFingerprint identifies a key without revealing it.
func keyFingerprint(key []byte) string { return hex.EncodeToString(derive(key, "fingerprint", 8)) }

// FarmTLS returns the TLS 1.3 configuration the agent's default transport
// uses (exported for tools that build their own TCPTransport): every agent of the farm
// presents the same certificate, made from a key derived from the farm
// key, and accepts exactly that certificate from its peer: mutual
// authentication by possession of the farm key, with forward-secret
// session keys.
func FarmTLS(key []byte) (*tls.Config, error) {
	priv := ed25519.NewKeyFromSeed(derive(key, "tls identity", ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "gardenstate farm " + keyFingerprint(key)},
		NotBefore:             time.Unix(0, 0),
		NotAfter:              time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"gardenstate"},
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("replication: farm certificate: %w", err)
	}
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer sent no certificate")
		}
		c, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		if p, ok := c.PublicKey.(ed25519.PublicKey); !ok || !p.Equal(pub) {
			return errors.New("peer's certificate is not this farm's: its farm key differs")
		}
		return nil
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: priv}},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // replaced by VerifyPeerCertificate: the farm certificate is pinned
		VerifyPeerCertificate: verify,
		ServerName:            "gardenstate",
	}, nil
}

// FileTLS returns a TLS 1.3 configuration from operator-provided PEM files:
// this agent's certificate and key, and the CA that signs every agent's
// certificate. Both sides verify each other against the CA.
func FileTLS(certFile, keyFile, caFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("replication: TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("replication: TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("replication: TLS CA %s: no certificates found", caFile)
	}
	// Peers are dialled by address, not by a name their certificates
	// carry: verify the chain against the CA, not a host name.
	verify := func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("peer sent no certificate")
		}
		leaf, err := x509.ParseCertificate(raw[0])
		if err != nil {
			return err
		}
		inter := x509.NewCertPool()
		for _, r := range raw[1:] {
			if c, err := x509.ParseCertificate(r); err == nil {
				inter.AddCert(c)
			}
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	return &tls.Config{
		MinVersion:            tls.VersionTLS13,
		Certificates:          []tls.Certificate{cert},
		ClientAuth:            tls.RequireAnyClientCert,
		InsecureSkipVerify:    true, // replaced by VerifyPeerCertificate against the CA
		VerifyPeerCertificate: verify,
	}, nil
}
