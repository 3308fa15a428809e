//go:build !linux

// platform_other.go stubs the platform code on systems prefork does not
// support.

package prefork

import "context"

const supported = false

func runParent(ctx context.Context, c *Config) error { return ErrUnsupportedPlatform }

func runWorker(ctx context.Context, c *Config, setup any) error { return ErrUnsupportedPlatform }
