//go:build !unix

package onesoidc

import "io/fs"

// fileOwner reports no owner where files have no Unix uid.
func fileOwner(fs.FileInfo) (int, bool) { return 0, false }
