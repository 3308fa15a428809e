// errors.go holds every sentinel error the garden package returns.

package garden

import "errors"

var (
	// ErrBadConfig is returned by Open when a Config field is out of range.
	// The message names the field and what it must be.
	ErrBadConfig = errors.New("garden: bad config")

	// ErrBadKey is returned by Open and ParseKey when a farm key is not 32
	// bytes in standard base64 on one line (as `openssl rand -base64 32`
	// prints it), or when its file or environment variable cannot be read.
	ErrBadKey = errors.New("garden: bad farm key")

	// ErrRequestDone is returned by the methods of a Session used after the
	// request it belongs to has ended.
	ErrRequestDone = errors.New("garden: session used after its request ended")

	// ErrSessionGone is returned by Session.Save (and logged by Middleware)
	// when the session was destroyed or renewed by a concurrent request
	// between loading and saving: the changes of this request are dropped
	// and its cookie removed, rather than bringing back a session that was
	// logged out.
	ErrSessionGone = errors.New("garden: session was deleted by a concurrent request")

	// ErrContention is returned by Session.Save (and logged by Middleware)
	// when saving kept losing to concurrent writers of the same session for
	// every retry.
	ErrContention = errors.New("garden: too many concurrent writers of one session")

	// ErrCorruptSession is logged by Middleware when a stored session does
	// not decode; the request gets a new session (or, when saving, the
	// corrupt record is overwritten).
	ErrCorruptSession = errors.New("garden: stored session does not decode")

	// ErrUnavailable is returned by the methods of a Session that could not
	// be read because its part of the segment is held by a live process
	// that does not let go (one stopped in the middle of a write) for
	// longer than the segment's LockTimeout. Nothing is saved and the
	// cookie is left alone, so the session is there again once the
	// process resumes or dies.
	ErrUnavailable = errors.New("garden: session unavailable: its part of the segment is held by a stopped process")

	// errBadCookie is returned by decodeCookie for a cookie that is
	// truncated, malformed, of an unknown format or fails its MAC.
	errBadCookie = errors.New("garden: malformed or forged session cookie")
)
