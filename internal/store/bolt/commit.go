package bolt

import (
	"fmt"
	"slices"
	"sync"

	bbolt "go.etcd.io/bbolt"
	bberrors "go.etcd.io/bbolt/errors"
)

// maxBatch is the most calls that one transaction of the committer runs, as
// bbolt's DefaultMaxBatchSize.
const maxBatch = 1000

// committer group-commits read-write transactions: calls of do that overlap
// share one bbolt transaction, and so one commit and its fdatasyncs.
//
// It has no goroutine of its own; callers take turns leading. A call that
// finds no transaction in progress leads at once: it commits itself alone, on
// its own goroutine, exactly as db.Update would. Calls that arrive while a
// transaction is in progress queue up. When the leader's transaction is
// over, it hands the queue, at most maxBatch calls, to the first of them,
// which commits them all in one transaction and hands on in turn. Unlike
// bbolt's DB.Batch nothing waits for company, and a queued call is woken
// once, either to lead or with its result.
//
// The functions of a batch run one after another in one transaction, so each
// sees the writes of those before it, as if they had run one at a time in
// that order. If one returns an error, or panics, the transaction is rolled
// back and the others run again without it; then it runs alone, in a
// transaction of its own, to get its own error. A function may therefore run
// more than once, on different data (another call's writes rolled back, the
// clock moved on), and must reset whatever it captures at the start of each
// run. An expected refusal that writes nothing is best carried out of the
// function in a captured variable, with a nil return, so that it does not
// cost the whole batch a rerun.
type committer struct {
	db *bbolt.DB
	// beforeTx, if set, runs on the leading goroutine before each
	// transaction with the number of functions it will run. Tests use it to
	// hold the leader while calls queue up behind it, and to count
	// transactions.
	beforeTx func(n int)

	mu      sync.Mutex
	queue   []*call // calls waiting for the next transaction
	leading bool    // a call is committing; the queued calls wait for it
	closed  bool
	idle    sync.Cond // broadcast when leading turns false; L is &mu
}

// call is one call of do.
type call struct {
	fn func(*bbolt.Tx) error
	// res receives the call's result, or, while it is queued, the batch it
	// is to lead. Buffered, so that no one waits to send to it.
	res chan result
}

// result is what a call receives: the error of its transaction, or, if lead
// is not nil, a batch to commit, itself first.
type result struct {
	err  error
	lead []*call
}

// newCommitter returns a committer of db; close it before db.
func newCommitter(db *bbolt.DB, beforeTx func(n int)) *committer {
	c := &committer{db: db, beforeTx: beforeTx}
	c.idle.L = &c.mu
	return c
}

// do runs fn in a read-write transaction shared with the calls that overlap
// it, and returns once that transaction has committed or failed. It returns
// fn's error, the commit's error, or bberrors.ErrDatabaseNotOpen once the
// committer is closed. do cannot be cancelled: once queued, fn will run and
// may be committed, so the caller waits to learn whether it was.
func (c *committer) do(fn func(*bbolt.Tx) error) error {
	cl := &call{fn: fn, res: make(chan result, 1)}
	var batch []*call
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return bberrors.ErrDatabaseNotOpen
	case c.leading:
		c.queue = append(c.queue, cl)
		c.mu.Unlock()
		r := <-cl.res
		if r.lead == nil {
			return r.err
		}
		batch = r.lead
	default:
		c.leading = true
		c.mu.Unlock()
		batch = []*call{cl}
	}
	c.commit(batch) // sends cl its result
	c.handOff()
	return (<-cl.res).err
}

// handOff hands the queued calls to the first of them to commit, or, if
// there are none, ends the leading.
func (c *committer) handOff() {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch := c.queue
	switch {
	case len(batch) == 0:
		c.leading = false
		c.idle.Broadcast()
		return
	case len(batch) > maxBatch:
		// The rest of the queue stays behind batch in the same array, so
		// appending to it never overwrites batch.
		batch, c.queue = batch[:maxBatch:maxBatch], batch[maxBatch:]
	default:
		c.queue = nil
	}
	batch[0].res <- result{lead: batch}
}

// close makes later calls of do fail and waits until the calls already
// queued have committed. It must be called before the database is closed.
func (c *committer) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for c.leading {
		c.idle.Wait()
	}
}

// queued returns how many calls wait for the next transaction.
func (c *committer) queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// commit runs the functions of batch in one transaction, taking out and
// running alone the ones that fail, and gives every call its result.
func (c *committer) commit(batch []*call) {
	var solo []*call // failed in company: each runs again alone
	for len(batch) > 0 {
		failed := -1
		c.before(len(batch))
		err := c.db.Update(func(tx *bbolt.Tx) error {
			for i, cl := range batch {
				if err := safelyCall(cl.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		switch {
		case failed == 0:
			// It ran first, on the committed state, as if alone: the error
			// is its own.
			batch[0].res <- result{err: err}
		case failed > 0:
			// It saw the writes of the functions before it, which are now
			// rolled back: run it again alone once the others are in.
			solo = append(solo, batch[failed])
		default:
			// Committed, or the commit failed for all of them.
			for _, cl := range batch {
				cl.res <- result{err: err}
			}
			batch = nil
		}
		if failed >= 0 {
			batch = slices.Delete(batch, failed, failed+1)
		}
	}
	for _, cl := range solo {
		c.before(1)
		cl.res <- result{err: c.db.Update(func(tx *bbolt.Tx) error { return safelyCall(cl.fn, tx) })}
	}
}

// before calls beforeTx, if set.
func (c *committer) before(n int) {
	if c.beforeTx != nil {
		c.beforeTx(n)
	}
}

// safelyCall runs fn and turns a panic into an error, as bbolt's DB.Batch
// does, so that a bug in one function fails its own call and rolls back its
// transaction. Otherwise the panic would unwind the leader with the others'
// calls in hand: they would never hear back, and leading would never end, so
// every later call would queue for ever if the panic were recovered higher
// up (net/http recovers handler panics).
func safelyCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in transaction: %v", p)
		}
	}()
	return fn(tx)
}
