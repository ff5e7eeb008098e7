package onesoidc

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
)

// checkKeyFile refuses a private key file that others could read, write or replace, as OpenSSH
// refuses an "UNPROTECTED PRIVATE KEY FILE": a mode that gives group or
// others any access (mode & 0o077), an owner other than the process's effective user (root may
// use any file), or a parent directory that others may write to (they could swap the key,
// sticky bit or not). Under WithInsecureKeyFilePermissions each finding is logged to the key
// logger instead. Nothing is checked on Windows, which has no such modes.
func checkKeyFile(path string, fi fs.FileInfo, o *keyOptions) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	euid := os.Geteuid
	if o.euid != nil {
		euid = o.euid
	}
	var problems []*ConfigError
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		problems = append(problems, &ConfigError{File: path, Field: keyField, Reason: fmt.Sprintf(
			"key file mode %#o lets group or others access the key; run chmod 600 %s", perm, path)})
	}
	if uid, ok := fileOwner(fi); ok {
		if me := euid(); me != 0 && uid != me {
			problems = append(problems, &ConfigError{File: path, Field: keyField, Reason: fmt.Sprintf(
				"key file is owned by uid %d, not by this process's uid %d; run chown %d %s", uid, me, me, path)})
		}
	}
	dir := filepath.Dir(path)
	if di, err := os.Stat(dir); err == nil && di.Mode().Perm()&0o002 != 0 {
		problems = append(problems, &ConfigError{File: path, Field: keyField, Reason: fmt.Sprintf(
			"directory %s (mode %#o) is writable by others, who could replace the key; move the key or run chmod o-w %s",
			dir, di.Mode().Perm(), dir)})
	}
	if len(problems) == 0 {
		return nil
	}
	if !o.insecurePerms {
		return problems[0]
	}
	for _, p := range problems {
		o.logger.Warn("onesoidc: insecure private key file accepted (WithInsecureKeyFilePermissions)",
			slog.String("file", path), slog.String("problem", p.Reason))
	}
	return nil
}
