package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/issuer-oauth/issuer/internal/store"
)

// Store returns st instrumented: every operation observes
// issuer_store_operation_duration_seconds, and every failure counts in
// issuer_store_errors_total. It behaves exactly as st (same results, same
// errors), and Close closes st.
func (m *Metrics) Store(st store.Store) store.Store {
	m.initStoreSeries()
	return &instrumented{Store: st, m: m}
}

// instrumented is the decorator. It embeds the store, so that an operation
// added to store.Store later passes through even before it is instrumented
// here.
type instrumented struct {
	store.Store
	m *Metrics
}

var _ store.Store = (*instrumented)(nil)

// observe records one operation that began at start and ended with err.
func (s *instrumented) observe(op string, start time.Time, err error) {
	s.m.storeDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if kind := errorKind(err); kind != "" {
		s.m.storeErrors.WithLabelValues(op, kind).Inc()
	}
}

// errorKind classifies err: "" for success and for the answers the store
// interface defines (not found, exists, reused, revoked, conflict, replayed,
// full) and for a caller that went away; "not_replicated" when a change was
// made but too few Redis replicas acknowledged it (redis_wait_replicas);
// "unavailable" when the store could not be reached or timed out; "other"
// for anything else.
func errorKind(err error) string {
	switch {
	case err == nil,
		errors.Is(err, store.ErrNotFound), errors.Is(err, store.ErrExists),
		errors.Is(err, store.ErrReused), errors.Is(err, store.ErrRevoked),
		errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrReplayed),
		errors.Is(err, store.ErrFull), errors.Is(err, context.Canceled):
		return ""
	case errors.Is(err, store.ErrNotReplicated):
		return "not_replicated"
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, context.DeadlineExceeded):
		return "unavailable"
	}
	return "other"
}

// The operations, as label values.
const (
	opCreateClient        = "create_client"
	opSetClientDisabled   = "set_client_disabled"
	opRotateRefreshRetry  = "rotate_refresh_retry"
	opGetClient           = "get_client"
	opListClients         = "list_clients"
	opUpdateClient        = "update_client"
	opDeleteClient        = "delete_client"
	opCreateFamily        = "create_family"
	opGetFamily           = "get_family"
	opRotateRefresh       = "rotate_refresh"
	opRevokeFamily        = "revoke_family"
	opRevokeToken         = "revoke_token"
	opIsRevoked           = "is_revoked"
	opInitKeys            = "init_keys"
	opListKeys            = "list_keys"
	opAddKey              = "add_key"
	opAddNextKey          = "add_next_key"
	opDeleteKey           = "delete_key"
	opCreateUser          = "create_user"
	opGetUser             = "get_user"
	opListUsers           = "list_users"
	opUpdateUser          = "update_user"
	opSetUserPassword     = "set_user_password"
	opUpgradeUserPassword = "upgrade_user_password"
	opDeleteUser          = "delete_user"
	opUseOnce             = "use_once"
	opPing                = "ping"
	opGetClientFresh      = "get_client_fresh"
	opSetClientSecret     = "set_client_secret"

	opLeaseStatus     = "lease_status"
	opSetStatus       = "set_status"
	opSetOwnerStatus  = "set_owner_status"
	opGetStatusList   = "get_status_list"
	opListStatusLists = "list_status_lists"
)

// operations lists every label value, so that the series exist (at zero)
// before the first operation.
var operations = []string{
	opCreateClient, opGetClient, opListClients, opUpdateClient, opDeleteClient,
	opCreateFamily, opGetFamily, opRotateRefresh, opRevokeFamily,
	opRevokeToken, opIsRevoked, opInitKeys, opListKeys, opAddKey, opAddNextKey, opDeleteKey,
	opCreateUser, opGetUser, opListUsers, opUpdateUser, opSetUserPassword, opUpgradeUserPassword, opDeleteUser,
	opUseOnce, opPing,
	opGetClientFresh, opSetClientSecret,
	opSetClientDisabled, opRotateRefreshRetry,
	opLeaseStatus, opSetStatus, opSetOwnerStatus, opGetStatusList, opListStatusLists,
}

// errorKinds are the values of the kind label.
var errorKinds = []string{"unavailable", "not_replicated", "other"}

// initStoreSeries creates every store series at zero, so that an alert on
// the increase of issuer_store_errors_total sees the first error.
func (m *Metrics) initStoreSeries() {
	for _, op := range operations {
		m.storeDuration.WithLabelValues(op)
		for _, kind := range errorKinds {
			m.storeErrors.WithLabelValues(op, kind)
		}
	}
}

func (s *instrumented) CreateClient(ctx context.Context, c store.Client) error {
	start := time.Now()
	err := s.Store.CreateClient(ctx, c)
	s.observe(opCreateClient, start, err)
	return err
}

func (s *instrumented) GetClient(ctx context.Context, id string) (store.Client, error) {
	start := time.Now()
	c, err := s.Store.GetClient(ctx, id)
	s.observe(opGetClient, start, err)
	return c, err
}

func (s *instrumented) ListClients(ctx context.Context) ([]store.Client, error) {
	start := time.Now()
	cs, err := s.Store.ListClients(ctx)
	s.observe(opListClients, start, err)
	return cs, err
}

func (s *instrumented) UpdateClient(ctx context.Context, c store.Client) error {
	start := time.Now()
	err := s.Store.UpdateClient(ctx, c)
	s.observe(opUpdateClient, start, err)
	return err
}

func (s *instrumented) DeleteClient(ctx context.Context, id string) error {
	start := time.Now()
	err := s.Store.DeleteClient(ctx, id)
	s.observe(opDeleteClient, start, err)
	return err
}

func (s *instrumented) CreateFamily(ctx context.Context, f store.Family) error {
	start := time.Now()
	err := s.Store.CreateFamily(ctx, f)
	s.observe(opCreateFamily, start, err)
	return err
}

func (s *instrumented) GetFamily(ctx context.Context, id string) (store.Family, error) {
	start := time.Now()
	f, err := s.Store.GetFamily(ctx, id)
	s.observe(opGetFamily, start, err)
	return f, err
}

func (s *instrumented) RotateRefresh(ctx context.Context, r store.Rotation) (store.Family, error) {
	start := time.Now()
	f, err := s.Store.RotateRefresh(ctx, r)
	s.observe(opRotateRefresh, start, err)
	return f, err
}

func (s *instrumented) RevokeFamily(ctx context.Context, id string) error {
	start := time.Now()
	err := s.Store.RevokeFamily(ctx, id)
	s.observe(opRevokeFamily, start, err)
	return err
}

func (s *instrumented) UseOnce(ctx context.Context, id string, until time.Time) error {
	start := time.Now()
	err := s.Store.UseOnce(ctx, id, until)
	s.observe(opUseOnce, start, err)
	return err
}

func (s *instrumented) RevokeToken(ctx context.Context, jti string, until time.Time) error {
	start := time.Now()
	err := s.Store.RevokeToken(ctx, jti, until)
	s.observe(opRevokeToken, start, err)
	return err
}

func (s *instrumented) IsRevoked(ctx context.Context, jti string) (bool, error) {
	start := time.Now()
	ok, err := s.Store.IsRevoked(ctx, jti)
	s.observe(opIsRevoked, start, err)
	return ok, err
}

func (s *instrumented) InitKeys(ctx context.Context, k store.Key) ([]store.Key, error) {
	start := time.Now()
	ks, err := s.Store.InitKeys(ctx, k)
	s.observe(opInitKeys, start, err)
	return ks, err
}

func (s *instrumented) ListKeys(ctx context.Context) ([]store.Key, error) {
	start := time.Now()
	ks, err := s.Store.ListKeys(ctx)
	s.observe(opListKeys, start, err)
	return ks, err
}

func (s *instrumented) AddKey(ctx context.Context, k store.Key) error {
	start := time.Now()
	err := s.Store.AddKey(ctx, k)
	s.observe(opAddKey, start, err)
	return err
}

func (s *instrumented) AddNextKey(ctx context.Context, k store.Key, now time.Time) ([]store.Key, error) {
	start := time.Now()
	ks, err := s.Store.AddNextKey(ctx, k, now)
	s.observe(opAddNextKey, start, err)
	return ks, err
}

func (s *instrumented) DeleteKey(ctx context.Context, id string) error {
	start := time.Now()
	err := s.Store.DeleteKey(ctx, id)
	s.observe(opDeleteKey, start, err)
	return err
}

func (s *instrumented) CreateUser(ctx context.Context, u store.User) error {
	start := time.Now()
	err := s.Store.CreateUser(ctx, u)
	s.observe(opCreateUser, start, err)
	return err
}

func (s *instrumented) GetUser(ctx context.Context, username string) (store.User, error) {
	start := time.Now()
	u, err := s.Store.GetUser(ctx, username)
	s.observe(opGetUser, start, err)
	return u, err
}

func (s *instrumented) ListUsers(ctx context.Context) ([]store.User, error) {
	start := time.Now()
	us, err := s.Store.ListUsers(ctx)
	s.observe(opListUsers, start, err)
	return us, err
}

func (s *instrumented) UpdateUser(ctx context.Context, u store.User) (store.User, error) {
	start := time.Now()
	u, err := s.Store.UpdateUser(ctx, u)
	s.observe(opUpdateUser, start, err)
	return u, err
}

func (s *instrumented) SetUserPassword(ctx context.Context, username, hash string) (store.User, error) {
	start := time.Now()
	u, err := s.Store.SetUserPassword(ctx, username, hash)
	s.observe(opSetUserPassword, start, err)
	return u, err
}

func (s *instrumented) UpgradeUserPassword(ctx context.Context, username, oldHash, newHash string) error {
	start := time.Now()
	err := s.Store.UpgradeUserPassword(ctx, username, oldHash, newHash)
	s.observe(opUpgradeUserPassword, start, err)
	return err
}

func (s *instrumented) DeleteUser(ctx context.Context, username string) error {
	start := time.Now()
	err := s.Store.DeleteUser(ctx, username)
	s.observe(opDeleteUser, start, err)
	return err
}

func (s *instrumented) Ping(ctx context.Context) error {
	start := time.Now()
	err := s.Store.Ping(ctx)
	s.observe(opPing, start, err)
	return err
}

func (s *instrumented) GetClientFresh(ctx context.Context, id string) (store.Client, error) {
	start := time.Now()
	c, err := s.Store.GetClientFresh(ctx, id)
	s.observe(opGetClientFresh, start, err)
	return c, err
}

func (s *instrumented) SetClientSecret(ctx context.Context, id string, hash []byte) (store.Client, error) {
	start := time.Now()
	c, err := s.Store.SetClientSecret(ctx, id, hash)
	s.observe(opSetClientSecret, start, err)
	return c, err
}

func (s *instrumented) SetClientDisabled(ctx context.Context, id string, disabled bool) (store.Client, error) {
	start := time.Now()
	c, err := s.Store.SetClientDisabled(ctx, id, disabled)
	s.observe(opSetClientDisabled, start, err)
	return c, err
}

func (s *instrumented) RotateRefreshRetry(ctx context.Context, r store.RetryRotation) ([]byte, error) {
	start := time.Now()
	replay, err := s.Store.RotateRefreshRetry(ctx, r)
	s.observe(opRotateRefreshRetry, start, err)
	return replay, err
}

func (s *instrumented) LeaseStatus(ctx context.Context, l store.StatusLease) (int64, error) {
	start := time.Now()
	first, err := s.Store.LeaseStatus(ctx, l)
	s.observe(opLeaseStatus, start, err)
	return first, err
}

func (s *instrumented) SetStatus(ctx context.Context, list string, idx []int64) error {
	start := time.Now()
	err := s.Store.SetStatus(ctx, list, idx)
	s.observe(opSetStatus, start, err)
	return err
}

func (s *instrumented) SetOwnerStatus(ctx context.Context, owner string) (int, error) {
	start := time.Now()
	n, err := s.Store.SetOwnerStatus(ctx, owner)
	s.observe(opSetOwnerStatus, start, err)
	return n, err
}

func (s *instrumented) GetStatusList(ctx context.Context, id string) (store.StatusList, error) {
	start := time.Now()
	l, err := s.Store.GetStatusList(ctx, id)
	s.observe(opGetStatusList, start, err)
	return l, err
}

func (s *instrumented) ListStatusLists(ctx context.Context) ([]store.StatusList, error) {
	start := time.Now()
	ls, err := s.Store.ListStatusLists(ctx)
	s.observe(opListStatusLists, start, err)
	return ls, err
}
