package replication

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// writeCA makes a CA and one certificate it signs, as PEM files; it returns
// the paths of the leaf certificate, its key and the CA certificate.
func writeCA(t *testing.T, dir, name string) (cert, key, ca string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	leafKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	leafTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	leafDER, err := x509.CreateCertificate(rand.Reader, leafTmpl, caCert, &leafKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(leafKey)
	write := func(file, typ string, der []byte) string {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write(name+".crt", "CERTIFICATE", leafDER), write(name+".key", "EC PRIVATE KEY", keyDER), write(name+"-ca.crt", "CERTIFICATE", caDER)
}

// TestFileTLS: agents with certificates from the operator's CA talk; an
// agent with a certificate from another CA is refused.
func TestFileTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, ca := writeCA(t, dir, "farm")
	serverTLS, err := FileTLS(cert, key, ca)
	if err != nil {
		t.Fatal(err)
	}
	srv := &TCPTransport{Addr: "127.0.0.1:0", TLS: serverTLS}
	ln, err := srv.Listen()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c) // echo
			}()
		}
	}()
	dial := func(tr *TCPTransport) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c, err := tr.Dial(ctx, ln.Addr().String())
		if err != nil {
			return err
		}
		defer c.Close()
		if _, err := c.Write([]byte("ping")); err != nil {
			return err
		}
		buf := make([]byte, 4)
		_, err = io.ReadFull(c, buf)
		return err
	}
	clientTLS, _ := FileTLS(cert, key, ca)
	if err := dial(&TCPTransport{TLS: clientTLS}); err != nil {
		t.Fatalf("same CA: %v", err)
	}
	oc, ok, oca := writeCA(t, dir, "other")
	otherTLS, err := FileTLS(oc, ok, oca)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(&TCPTransport{TLS: otherTLS}); err == nil {
		t.Fatal("a certificate from another CA was accepted")
	}
	// A client that trusts the farm's CA but whose own certificate is not
	// the farm's: the server must refuse it.
	intruderTLS, err := FileTLS(oc, ok, ca)
	if err != nil {
		t.Fatal(err)
	}
	if err := dial(&TCPTransport{TLS: intruderTLS}); err == nil {
		t.Fatal("the server accepted a client certificate from another CA")
	}
	if _, err := FileTLS(cert, key, filepath.Join(dir, "missing.crt")); err == nil {
		t.Fatal("FileTLS with a missing CA file succeeded")
	}
}
