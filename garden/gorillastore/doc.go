// Package gorillastore lets applications on github.com/gorilla/sessions keep
// their sessions in a garden segment, shared by every worker process of
// the host, by changing one line:
//
//	store := gorillastore.New(gardenStore) // was sessions.NewFilesystemStore("", key)
//
// Everything else stays: store.Get(r, name), session.Values,
// session.Save(r, w), sessions.Save, Options.MaxAge = -1 to delete.
//
// # Basics
//
// The cookie holds only the session id, signed (and, with a block key,
// encrypted) by gorilla/securecookie: with the key pairs given to New,
// or by default with a key derived from the garden farm key, so that every
// host of a farm accepts it. The values live in the segment under
// "gorilla/<name>/<id>", gob-encoded as gorilla's own stores do, so their
// types survive a round trip (register your own types with gob.Register,
// as before), and expire after Options.MaxAge seconds (the garden idle
// timeout for MaxAge 0).
//
// A forged, expired or malformed cookie gives a new session and a nil
// error, never an error page.
//
// # Caveats
//
// Values are saved whole, so two concurrent requests of one session that
// change different keys can lose one of the changes, as with any gorilla
// store. New sessions default to HttpOnly, Secure and SameSite=Lax cookies;
// set Options.Secure to false for plain-HTTP development.
package gorillastore
