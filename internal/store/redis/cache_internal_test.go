package redis

import (
	"fmt"
	"testing"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// TestMissingClientsBounded: ids without a client, which requests choose,
// are remembered up to maxMissing, never more, and the clients that exist
// are not pushed out by them.
func TestMissingClientsBounded(t *testing.T) {
	cc := newClientCache(time.Hour)
	cc.put(store.Client{ID: "known"}, cc.generation(), time.Now())
	for i := range maxMissing + 100 {
		cc.putMissing(fmt.Sprint("unknown-", i), cc.generation(), time.Now())
	}
	if n := len(cc.missing); n != maxMissing {
		t.Errorf("%d ids without a client remembered, want %d", n, maxMissing)
	}
	if _, exists, ok := cc.get("known"); !ok || !exists {
		t.Errorf("get(known) = exists %v, ok %v after a flood of unknown ids; want the client", exists, ok)
	}
	last := fmt.Sprint("unknown-", maxMissing+99)
	if _, exists, ok := cc.get(last); !ok || exists {
		t.Errorf("get(%s) = exists %v, ok %v; want remembered as missing", last, exists, ok)
	}
}

// TestMissingClientInvalidation: a read that began before an invalidation
// (the message of a CreateClient) does not remember the id as missing
// after it, and an invalidation forgets a remembered one.
func TestMissingClientInvalidation(t *testing.T) {
	cc := newClientCache(time.Hour)
	gen := cc.generation()
	cc.drop("c") // CreateClient's message arrives while the read is in flight
	cc.putMissing("c", gen, time.Now())
	if _, _, ok := cc.get("c"); ok {
		t.Error("an id read as missing before its creation was remembered after it")
	}
	cc.putMissing("d", cc.generation(), time.Now())
	cc.drop("d")
	if _, _, ok := cc.get("d"); ok {
		t.Error("an id remembered as missing survived its invalidation")
	}
	cc.putMissing("e", cc.generation(), time.Now())
	cc.flush()
	if _, _, ok := cc.get("e"); ok {
		t.Error("an id remembered as missing survived a flush")
	}
}
