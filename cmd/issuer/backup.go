package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"go.etcd.io/bbolt"
)

// runBackup implements `issuer backup FILE`: a consistent copy of a running
// issuer's embedded store, through the admin API (GET /admin/backup), into
// a new FILE. The copy is checked (it opens as a store file and its pages
// are sound) before FILE appears; FILE is never overwritten.
func runBackup(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("issuer backup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var common commonFlags
	common.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: issuer backup FILE [flags]\n\n"+
			"Copy the embedded store of a running issuer into the new file FILE, while it serves.\n"+
			"Restore: stop the issuer, put FILE in place of issuer.db in its data directory\n"+
			"(keeping issuer.secret, or ISSUER_SECRET), start it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		return 2
	}
	usageFail := func(format string, args ...any) int {
		fmt.Fprintf(stderr, "issuer: "+format+"\n", args...)
		fs.Usage()
		return 2
	}
	switch {
	case len(pos) == 0:
		return usageFail("missing FILE: run \"issuer backup FILE\" with the name of a new file")
	case len(pos) > 1:
		return usageFail("unexpected argument %q", pos[1])
	}
	file := pos[0]
	if _, err := os.Lstat(file); err == nil {
		fmt.Fprintf(stderr, "issuer: %s exists: give the backup a new name, or remove the old file first\n", file)
		return 1
	}
	a, err := common.resolve(getenv, nil, stdout, stderr)
	if err != nil {
		return usageFail("%v", err)
	}
	if a.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, a.timeout)
		defer cancel()
	}
	n, err := backupTo(ctx, a, file)
	if err != nil {
		fmt.Fprintf(stderr, "issuer: backup: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "backup: %s (%d bytes), a copy of the store of %s\n", file, n, a.where)
	return 0
}

// backupTo downloads the backup into a temporary file beside file, checks
// it, and links it to file, which must not exist.
func backupTo(ctx context.Context, a *adminCLI, file string) (int64, error) {
	tmp, err := os.CreateTemp(filepath.Dir(file), ".issuer-backup-*")
	if err != nil {
		return 0, fmt.Errorf("cannot write beside %s: %w", file, err)
	}
	defer os.Remove(tmp.Name())
	n, err := a.api.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, a.explain(ctx, err)
	}
	if err := checkStoreFile(tmp.Name()); err != nil {
		return 0, fmt.Errorf("the copy is not a sound store file (%v); nothing was written to %s", err, file)
	}
	if err := os.Link(tmp.Name(), file); err != nil {
		return 0, fmt.Errorf("cannot create %s: %w", file, err)
	}
	return n, nil
}

// checkStoreFile opens path as a bbolt file, read-only, and checks its
// pages and that it holds the issuer's buckets.
func checkStoreFile(path string) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		var first error
		for err := range tx.Check() { // drained: the check runs until it closes the channel
			if first == nil {
				first = err
			}
		}
		if first != nil {
			return first
		}
		if tx.Bucket([]byte("meta")) == nil {
			return errors.New("no meta bucket: not an issuer store")
		}
		return nil
	})
}
