package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
	"go.etcd.io/bbolt"

	"github.com/issuer-oauth/issuer/internal/redistest"
	"github.com/issuer-oauth/issuer/internal/testutil"
)

// TestNewerSchemaRefused: `issuer serve` on a store written by a newer
// issuer (a higher schema version) stops with one line saying so, and
// leaves the store as it was.
func TestNewerSchemaRefused(t *testing.T) {
	const secret = "test-secret-0123456789abcdefghijklmnop"
	serve := func(env map[string]string) (int, string) {
		env["ISSUER_ADDR"] = testutil.FreeAddr(t)
		var out, errb strings.Builder
		code := run(context.Background(), []string{"serve"}, func(k string) string { return env[k] }, nil, &out, &errb)
		return code, errb.String()
	}
	check := func(t *testing.T, code int, stderr string) {
		t.Helper()
		if code != 1 || strings.Count(stderr, "\n") != 1 ||
			!strings.Contains(stderr, "written by a newer issuer (schema version 99") ||
			!strings.Contains(stderr, "downgrading is not supported") {
			t.Errorf("serve: exit %d, stderr %q; want 1 and one line about the newer schema", code, stderr)
		}
	}

	t.Run("embedded", func(t *testing.T) {
		dir := t.TempDir()
		db, err := bbolt.Open(filepath.Join(dir, "issuer.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("schema_version"), []byte("99"))
		})
		if cerr := db.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		code, stderr := serve(map[string]string{"ISSUER_DATA_DIR": dir, "ISSUER_SECRET": secret})
		check(t, code, stderr)
		db, err = bbolt.Open(filepath.Join(dir, "issuer.db"), 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket([]byte("clients")) != nil {
				t.Error("serve added buckets to the newer store before refusing it")
			}
			return nil
		})
	})

	t.Run("redis", func(t *testing.T) {
		srv := redistest.Start(t)
		opt, err := goredis.ParseURL(srv.URL())
		if err != nil {
			t.Fatal(err)
		}
		c := goredis.NewClient(opt)
		defer c.Close()
		if err := c.Set(t.Context(), "issuer:schema_version", 99, 0).Err(); err != nil {
			t.Fatal(err)
		}
		code, stderr := serve(map[string]string{"ISSUER_REDIS_URL": srv.URL(), "ISSUER_SECRET": secret, "ISSUER_DATA_DIR": t.TempDir()})
		check(t, code, stderr)
		if n, _ := c.DBSize(t.Context()).Result(); n != 1 {
			t.Errorf("Redis holds %d keys after the refused start, want 1 (the schema version)", n)
		}
	})
}
