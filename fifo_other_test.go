//go:build !unix

package onesoidc

import "errors"

func mkfifo(string) error { return errors.ErrUnsupported }
