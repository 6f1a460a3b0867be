// Package vaulttest runs an in-process HashiCorp Vault stand-in on loopback
// for tests. It answers the part of Vault's HTTP API that providers/vault
// uses, with the status codes and JSON shapes of Vault's API documentation:
//
//	GET  /v1/sys/internal/ui/mounts/:path     mount type and options (KV version)
//	GET  /v1/:mount/data/:path?version=N       KV version 2 read
//	GET  /v1/:mount/:path                      KV version 1 read
//	POST /v1/auth/:approle/login               AppRole login (role_id, secret_id)
//	POST /v1/auth/:approle/role/:name/secret-id  a secret id, wrapped with X-Vault-Wrap-TTL
//	POST /v1/auth/:kubernetes/login            Kubernetes login (role, jwt)
//	GET  /v1/auth/token/lookup-self
//	POST /v1/auth/token/renew-self
//	POST /v1/sys/wrapping/unwrap               the wrapping token as X-Vault-Token or "token"
//
// Writes accept PUT as well as POST, as Vault does. Tokens carry a TTL and a
// max TTL; renewals are capped by the max TTL with Vault's warning, and a
// token past its expiry is refused with 403. The clock can be moved forward
// (Advance). Vault being sealed or unreachable is simulated with Fail and
// Close. Counts tells what was asked, for assertions.
//
// It keeps no ACL policies: any valid token may read anything except paths
// marked with Deny.
package vaulttest

import (
	"crypto/rand"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Options configure a Server.
type Options struct {
	// Namespace, if set, is the only Vault Enterprise namespace the server
	// serves: requests must carry it in X-Vault-Namespace.
	Namespace string
	// TLS serves HTTPS with a certificate for 127.0.0.1 signed by a CA that
	// CACertPEM returns.
	TLS bool
}

// Counts are what the server was asked, for assertions.
type Counts struct {
	Requests    int            // every request
	Failed      int            // requests answered by Fail
	Logins      map[string]int // successful logins by auth mount ("approle", "kubernetes")
	BadLogins   int            // refused logins
	LookupSelf  int            // auth/token/lookup-self answered with 200
	Renewals    int            // successful auth/token/renew-self
	Unwraps     int            // successful sys/wrapping/unwrap
	MountReads  int            // sys/internal/ui/mounts reads answered with 200
	SecretReads int            // KV reads, found or not
	Denied      int            // 403 answers: missing, unknown or expired token, wrong namespace, Deny
}

// AppRole is an AppRole role.
type AppRole struct {
	Mount    string // default "approle"
	Name     string // default "caesium"
	RoleID   string
	SecretID string // optional; more are made by NewSecretID, WrapSecretID and the secret-id endpoint
	// TokenTTL and TokenMaxTTL shape the tokens a login issues (defaults
	// 1h and none).
	TokenTTL, TokenMaxTTL time.Duration
}

// KubernetesRole is a role of the Kubernetes auth method that accepts one
// service account token.
type KubernetesRole struct {
	Mount                 string // default "kubernetes"
	Role                  string
	JWT                   string
	ServiceAccount        string // default "caesium"
	Namespace             string // default "default"
	TokenTTL, TokenMaxTTL time.Duration
}

// TokenOptions shape a token made by CreateToken.
type TokenOptions struct {
	TTL       time.Duration // 0: never expires (like a root token)
	MaxTTL    time.Duration // 0: no max TTL
	Renewable bool
}

// Server is a running Vault stand-in. Its methods are safe for concurrent
// use.
type Server struct {
	// URL is the address to configure the client with.
	URL string

	srv       *httptest.Server
	namespace string

	mu            sync.Mutex
	offset        time.Duration
	fail          int
	tokens        map[string]*token
	approles      map[string]*approle // by mount + "/" + name
	k8s           map[string]*KubernetesRole
	wraps         map[string]wrapped
	mounts        map[string]*kvMount
	denied        map[string]bool // mount + "/" + path
	counts        Counts
	issued        []string // every credential handed out or accepted, for leak checks
	lastReadToken string
}

type token struct {
	id, accessor string
	path         string
	meta         map[string]string
	policies     []string
	ttl          time.Duration // what a renewal grants
	maxTTL       time.Duration // 0: none
	renewable    bool
	issued       time.Time
	expires      time.Time // zero: never
}

type approle struct {
	AppRole
	secretIDs map[string]bool
}

type wrapped struct {
	data    map[string]any
	expires time.Time
}

type kvMount struct {
	version  int // 0: kv without a version option (behaves as 1)
	uuid     string
	accessor string
	entries  map[string]*kvEntry
}

type kvEntry struct {
	data     map[string]any // version 1
	versions []*kvVersion   // version 2, versions[i] is version i+1
}

type kvVersion struct {
	data      map[string]any
	created   time.Time
	deleted   time.Time
	destroyed bool
}

// New starts a Server on loopback and stops it when the test ends.
func New(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{
		namespace: strings.Trim(opts.Namespace, "/"),
		tokens:    map[string]*token{},
		approles:  map[string]*approle{},
		k8s:       map[string]*KubernetesRole{},
		wraps:     map[string]wrapped{},
		mounts:    map[string]*kvMount{},
		denied:    map[string]bool{},
		counts:    Counts{Logins: map[string]int{}},
	}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(s.serve))
	// Clients that do not trust the certificate are part of the tests.
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if opts.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	t.Cleanup(s.Close)
	return s
}

// Close stops the server: connections are refused from then on.
func (s *Server) Close() { s.srv.Close() }

// CACertPEM returns the PEM of the certificate a TLS server presents (it is
// its own CA), for a client's CA file.
func (s *Server) CACertPEM() []byte {
	c := s.srv.Certificate()
	if c == nil {
		return nil
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// Fail makes every request fail with status (503 answers "Vault is sealed",
// as a sealed Vault does); 0 serves normally again.
func (s *Server) Fail(status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = status
}

// Advance moves the server's clock forward, expiring tokens and wrapping
// tokens without waiting.
func (s *Server) Advance(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.offset += d
}

// Counts returns what the server was asked so far.
func (s *Server) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.counts
	c.Logins = maps.Clone(s.counts.Logins)
	return c
}

// Credentials returns every token, wrapping token, secret id, role id and
// service account token the server issued or was configured with, so a test
// can check that none leaks into errors or logs.
func (s *Server) Credentials() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// LastReadToken returns the token of the last KV read.
func (s *Server) LastReadToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastReadToken
}

// CreateToken issues a token, as auth/token/create would.
func (s *Server) CreateToken(o TokenOptions) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.issueLocked("auth/token/create", o.TTL, o.MaxTTL, o.Renewable, nil).id
}

// RevokeToken makes a token unknown, as auth/token/revoke would.
func (s *Server) RevokeToken(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.tokens, id)
}

// AddAppRole adds (or replaces) an AppRole role.
func (s *Server) AddAppRole(r AppRole) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Mount == "" {
		r.Mount = "approle"
	}
	if r.Name == "" {
		r.Name = "caesium"
	}
	if r.TokenTTL == 0 {
		r.TokenTTL = time.Hour
	}
	ar := &approle{AppRole: r, secretIDs: map[string]bool{}}
	if r.SecretID != "" {
		ar.secretIDs[r.SecretID] = true
		s.issued = append(s.issued, r.SecretID)
	}
	s.issued = append(s.issued, r.RoleID)
	s.approles[r.Mount+"/"+r.Name] = ar
}

// NewSecretID makes a secret id for an AppRole role.
func (s *Server) NewSecretID(mount, name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar := s.approles[mount+"/"+name]
	if ar == nil {
		panic("vaulttest: no approle " + mount + "/" + name)
	}
	return s.newSecretIDLocked(ar)
}

// WrapSecretID makes a secret id for an AppRole role and returns a
// single-use wrapping token for it, valid for ttl.
func (s *Server) WrapSecretID(mount, name string, ttl time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ar := s.approles[mount+"/"+name]
	if ar == nil {
		panic("vaulttest: no approle " + mount + "/" + name)
	}
	sid := s.newSecretIDLocked(ar)
	return s.wrapLocked(secretIDData(sid), ttl)
}

// AddKubernetesRole adds (or replaces) a Kubernetes auth role.
func (s *Server) AddKubernetesRole(r KubernetesRole) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Mount == "" {
		r.Mount = "kubernetes"
	}
	if r.ServiceAccount == "" {
		r.ServiceAccount = "caesium"
	}
	if r.Namespace == "" {
		r.Namespace = "default"
	}
	if r.TokenTTL == 0 {
		r.TokenTTL = time.Hour
	}
	s.issued = append(s.issued, r.JWT)
	s.k8s[r.Mount+"/"+r.Role] = &r
}

// Mount enables a KV secrets engine at path: version 1 or 2, or 0 for a kv
// mount without a version option (which Vault treats as version 1).
func (s *Server) Mount(path string, version int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mounts[strings.Trim(path, "/")] = &kvMount{
		version:  version,
		uuid:     uuid(),
		accessor: "kv_" + randomString(8),
		entries:  map[string]*kvEntry{},
	}
}

// Put writes a secret. On a version 2 mount it adds a version and returns
// its number; on version 1 it overwrites and returns 0.
func (s *Server) Put(mount, path string, data map[string]any) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mountLocked(mount)
	e := m.entries[path]
	if e == nil {
		e = &kvEntry{}
		m.entries[path] = e
	}
	if m.version != 2 {
		e.data = maps.Clone(data)
		return 0
	}
	e.versions = append(e.versions, &kvVersion{data: maps.Clone(data), created: s.nowLocked()})
	return len(e.versions)
}

// Delete soft-deletes versions of a KV version 2 secret (the latest if none
// are given), or removes a KV version 1 secret.
func (s *Server) Delete(mount, path string, versions ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.mountLocked(mount)
	e := m.entries[path]
	if e == nil {
		return
	}
	if m.version != 2 {
		delete(m.entries, path)
		return
	}
	if len(versions) == 0 {
		versions = []int{len(e.versions)}
	}
	for _, n := range versions {
		if n >= 1 && n <= len(e.versions) {
			e.versions[n-1].deleted = s.nowLocked()
		}
	}
}

// Destroy destroys versions of a KV version 2 secret for good.
func (s *Server) Destroy(mount, path string, versions ...int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.mountLocked(mount).entries[path]
	if e == nil {
		return
	}
	for _, n := range versions {
		if n >= 1 && n <= len(e.versions) {
			e.versions[n-1].destroyed = true
			e.versions[n-1].data = nil
		}
	}
}

// Deny makes reads of a secret fail with 403, as a policy without read on
// the path would.
func (s *Server) Deny(mount, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.denied[mount+"/"+path] = true
}

func (s *Server) mountLocked(mount string) *kvMount {
	m := s.mounts[mount]
	if m == nil {
		panic("vaulttest: no mount " + mount)
	}
	return m
}

func (s *Server) nowLocked() time.Time { return time.Now().Add(s.offset) }

// ---- HTTP ----

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts.Requests++
	if s.fail != 0 {
		s.counts.Failed++
		msg := "injected failure"
		if s.fail == http.StatusServiceUnavailable {
			msg = "Vault is sealed"
		}
		writeErrors(w, s.fail, msg)
		return
	}
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		writeErrors(w, http.StatusNotFound)
		return
	}
	if ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/"); ns != s.namespace {
		// Nothing this server knows lives in another namespace.
		s.deny(w)
		return
	}
	var body map[string]any
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20))
		dec.UseNumber()
		if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
			writeErrors(w, http.StatusBadRequest, "failed to parse JSON input: "+err.Error())
			return
		}
	}
	write := r.Method == http.MethodPost || r.Method == http.MethodPut
	read := r.Method == http.MethodGet

	switch {
	case strings.HasPrefix(p, "sys/internal/ui/mounts/") && read:
		s.readMount(w, r, strings.TrimPrefix(p, "sys/internal/ui/mounts/"))
	case p == "sys/wrapping/unwrap" && write:
		s.unwrap(w, r, body)
	case p == "auth/token/lookup-self" && (read || write):
		s.lookupSelf(w, r)
	case p == "auth/token/renew-self" && write:
		s.renewSelf(w, r, body)
	case strings.HasPrefix(p, "auth/"):
		s.authMethod(w, r, strings.TrimPrefix(p, "auth/"), body, write)
	default:
		s.kv(w, r, p, read)
	}
}

// authToken returns the valid token of r, or answers 403.
func (s *Server) authToken(w http.ResponseWriter, r *http.Request) *token {
	id := r.Header.Get("X-Vault-Token")
	t := s.tokens[id]
	if t == nil || s.expiredLocked(t) {
		s.deny(w)
		return nil
	}
	return t
}

func (s *Server) deny(w http.ResponseWriter) {
	s.counts.Denied++
	writeErrors(w, http.StatusForbidden, "permission denied")
}

func (s *Server) expiredLocked(t *token) bool {
	now := s.nowLocked()
	if !t.expires.IsZero() && !now.Before(t.expires) {
		return true
	}
	return t.maxTTL > 0 && !now.Before(t.issued.Add(t.maxTTL))
}

func (s *Server) issueLocked(path string, ttl, maxTTL time.Duration, renewable bool, meta map[string]string) *token {
	if maxTTL > 0 && ttl > maxTTL {
		ttl = maxTTL
	}
	now := s.nowLocked()
	t := &token{
		id:        "hvs." + randomString(24),
		accessor:  randomString(24),
		path:      path,
		meta:      meta,
		policies:  []string{"default"},
		ttl:       ttl,
		maxTTL:    maxTTL,
		renewable: renewable && ttl > 0,
		issued:    now,
	}
	if ttl > 0 {
		t.expires = now.Add(ttl)
	}
	s.tokens[t.id] = t
	s.issued = append(s.issued, t.id)
	return t
}

// envelope is the body of every Vault response, per the API docs.
func envelope() map[string]any {
	return map[string]any{
		"request_id":     uuid(),
		"lease_id":       "",
		"renewable":      false,
		"lease_duration": 0,
		"data":           nil,
		"wrap_info":      nil,
		"warnings":       nil,
		"auth":           nil,
	}
}

func authEnvelope(t *token, warnings []string) map[string]any {
	env := envelope()
	if len(warnings) > 0 {
		env["warnings"] = warnings
	}
	env["auth"] = map[string]any{
		"client_token":    t.id,
		"accessor":        t.accessor,
		"policies":        t.policies,
		"token_policies":  t.policies,
		"metadata":        t.meta,
		"lease_duration":  int(t.ttlLeft(t.issued) / time.Second),
		"renewable":       t.renewable,
		"entity_id":       "",
		"token_type":      "service",
		"orphan":          true,
		"mfa_requirement": nil,
		"num_uses":        0,
	}
	return env
}

// ttlLeft is the token's TTL as seen at now.
func (t *token) ttlLeft(now time.Time) time.Duration {
	if t.expires.IsZero() {
		return 0
	}
	return max(t.expires.Sub(now), 0)
}

func (s *Server) lookupSelf(w http.ResponseWriter, r *http.Request) {
	t := s.authToken(w, r)
	if t == nil {
		return
	}
	s.counts.LookupSelf++
	now := s.nowLocked()
	var expire any
	if !t.expires.IsZero() {
		expire = t.expires.Format(time.RFC3339Nano)
	}
	env := envelope()
	env["data"] = map[string]any{
		"accessor":         t.accessor,
		"creation_time":    t.issued.Unix(),
		"creation_ttl":     int(t.ttl / time.Second),
		"display_name":     strings.ReplaceAll(t.path, "/", "-"),
		"entity_id":        "",
		"expire_time":      expire,
		"explicit_max_ttl": int(t.maxTTL / time.Second),
		"id":               t.id,
		"issue_time":       t.issued.Format(time.RFC3339Nano),
		"meta":             t.meta,
		"num_uses":         0,
		"orphan":           true,
		"path":             t.path,
		"policies":         t.policies,
		"renewable":        t.renewable,
		"ttl":              int(t.ttlLeft(now) / time.Second),
		"type":             "service",
	}
	writeJSON(w, http.StatusOK, env)
}

func (s *Server) renewSelf(w http.ResponseWriter, r *http.Request, body map[string]any) {
	t := s.authToken(w, r)
	if t == nil {
		return
	}
	if !t.renewable {
		writeErrors(w, http.StatusBadRequest, "lease is not renewable")
		return
	}
	now := s.nowLocked()
	ttl := t.ttl
	if inc, err := durationParam(body["increment"]); err != nil {
		writeErrors(w, http.StatusBadRequest, err.Error())
		return
	} else if inc > 0 {
		ttl = inc
	}
	var warnings []string
	if t.maxTTL > 0 {
		if left := t.issued.Add(t.maxTTL).Sub(now); ttl > left {
			warnings = append(warnings, fmt.Sprintf("TTL of %q exceeded the effective max_ttl of %q; TTL value is capped accordingly",
				ttl.Round(time.Second).String(), left.Round(time.Second).String()))
			ttl = left
		}
	}
	t.expires = now.Add(ttl)
	s.counts.Renewals++
	env := authEnvelope(t, warnings)
	env["auth"].(map[string]any)["lease_duration"] = int(ttl / time.Second)
	writeJSON(w, http.StatusOK, env)
}

// durationParam reads a TTL given as seconds (a number) or a Go duration
// string ("1h"), as Vault's parameters accept.
func durationParam(v any) (time.Duration, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case json.Number:
		n, err := x.Int64()
		return time.Duration(n) * time.Second, err
	case string:
		if n, err := strconv.Atoi(x); err == nil {
			return time.Duration(n) * time.Second, nil
		}
		return time.ParseDuration(x)
	}
	return 0, fmt.Errorf("invalid duration %v", v)
}

func (s *Server) authMethod(w http.ResponseWriter, r *http.Request, p string, body map[string]any, write bool) {
	mount, rest, _ := strings.Cut(p, "/")
	if !write {
		writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
		return
	}
	if rest == "login" {
		if s.hasAppRoleMount(mount) {
			s.appRoleLogin(w, mount, body)
			return
		}
		if s.hasK8sMount(mount) {
			s.k8sLogin(w, mount, body)
			return
		}
	}
	if name, ok := strings.CutPrefix(rest, "role/"); ok {
		if name, ok := strings.CutSuffix(name, "/secret-id"); ok {
			s.secretIDEndpoint(w, r, mount, name)
			return
		}
	}
	writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", "auth/"+p))
}

func (s *Server) hasAppRoleMount(mount string) bool {
	for _, ar := range s.approles {
		if ar.Mount == mount {
			return true
		}
	}
	return false
}

func (s *Server) hasK8sMount(mount string) bool {
	for _, kr := range s.k8s {
		if kr.Mount == mount {
			return true
		}
	}
	return false
}

func (s *Server) appRoleLogin(w http.ResponseWriter, mount string, body map[string]any) {
	roleID, _ := body["role_id"].(string)
	secretID, _ := body["secret_id"].(string)
	var ar *approle
	for _, c := range s.approles {
		if c.Mount == mount && c.RoleID == roleID && roleID != "" {
			ar = c
		}
	}
	if ar == nil || !ar.secretIDs[secretID] {
		s.counts.BadLogins++
		writeErrors(w, http.StatusBadRequest, "invalid role or secret ID")
		return
	}
	t := s.issueLocked("auth/"+mount+"/login", ar.TokenTTL, ar.TokenMaxTTL, true, map[string]string{"role_name": ar.Name})
	s.counts.Logins[mount]++
	writeJSON(w, http.StatusOK, authEnvelope(t, nil))
}

func (s *Server) k8sLogin(w http.ResponseWriter, mount string, body map[string]any) {
	role, _ := body["role"].(string)
	jwt, _ := body["jwt"].(string)
	kr := s.k8s[mount+"/"+role]
	if kr == nil {
		s.counts.BadLogins++
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("invalid role name %q", role))
		return
	}
	if jwt == "" || jwt != kr.JWT {
		s.counts.BadLogins++
		s.deny(w)
		return
	}
	t := s.issueLocked("auth/"+mount+"/login", kr.TokenTTL, kr.TokenMaxTTL, true, map[string]string{
		"role":                        kr.Role,
		"service_account_name":        kr.ServiceAccount,
		"service_account_namespace":   kr.Namespace,
		"service_account_secret_name": "",
		"service_account_uid":         uuid(),
	})
	s.counts.Logins[mount]++
	writeJSON(w, http.StatusOK, authEnvelope(t, nil))
}

// secretIDEndpoint makes a secret id; with X-Vault-Wrap-TTL the response is
// wrapped and only wrap_info is returned, as Vault does.
func (s *Server) secretIDEndpoint(w http.ResponseWriter, r *http.Request, mount, name string) {
	if s.authToken(w, r) == nil {
		return
	}
	ar := s.approles[mount+"/"+name]
	if ar == nil {
		writeErrors(w, http.StatusBadRequest, fmt.Sprintf("role %q does not exist", name))
		return
	}
	data := secretIDData(s.newSecretIDLocked(ar))
	env := envelope()
	wrapTTL := r.Header.Get("X-Vault-Wrap-TTL")
	if wrapTTL == "" {
		env["data"] = data
		writeJSON(w, http.StatusOK, env)
		return
	}
	ttl, err := durationParam(wrapTTL)
	if err != nil || ttl <= 0 {
		writeErrors(w, http.StatusBadRequest, "invalid wrap TTL")
		return
	}
	wt := s.wrapLocked(data, ttl)
	env["wrap_info"] = map[string]any{
		"token":            wt,
		"accessor":         randomString(24),
		"ttl":              int(ttl / time.Second),
		"creation_time":    s.nowLocked().Format(time.RFC3339Nano),
		"creation_path":    "auth/" + mount + "/role/" + name + "/secret-id",
		"wrapped_accessor": "",
	}
	writeJSON(w, http.StatusOK, env)
}

func (s *Server) newSecretIDLocked(ar *approle) string {
	sid := uuid()
	ar.secretIDs[sid] = true
	s.issued = append(s.issued, sid)
	return sid
}

func secretIDData(sid string) map[string]any {
	return map[string]any{
		"secret_id":          sid,
		"secret_id_accessor": uuid(),
		"secret_id_ttl":      0,
		"secret_id_num_uses": 0,
	}
}

func (s *Server) wrapLocked(data map[string]any, ttl time.Duration) string {
	wt := "hvs." + randomString(24)
	s.wraps[wt] = wrapped{data: data, expires: s.nowLocked().Add(ttl)}
	s.issued = append(s.issued, wt)
	return wt
}

// unwrap takes the wrapping token from the "token" parameter (the client
// token must then be a valid token) or, without it, from X-Vault-Token.
func (s *Server) unwrap(w http.ResponseWriter, r *http.Request, body map[string]any) {
	wt, _ := body["token"].(string)
	if wt == "" {
		wt = r.Header.Get("X-Vault-Token")
	} else if s.authToken(w, r) == nil {
		return
	}
	wr, ok := s.wraps[wt]
	if !ok || !s.nowLocked().Before(wr.expires) {
		writeErrors(w, http.StatusBadRequest, "wrapping token is not valid or does not exist")
		return
	}
	delete(s.wraps, wt) // single use
	s.counts.Unwraps++
	env := envelope()
	env["data"] = wr.data
	writeJSON(w, http.StatusOK, env)
}

func (s *Server) findMount(p string) (string, *kvMount) {
	best := ""
	for name := range s.mounts {
		if (p == name || strings.HasPrefix(p, name+"/")) && len(name) > len(best) {
			best = name
		}
	}
	return best, s.mounts[best]
}

func (s *Server) readMount(w http.ResponseWriter, r *http.Request, p string) {
	if s.authToken(w, r) == nil {
		return
	}
	p = strings.Trim(p, "/")
	name, m := s.findMount(p)
	if m == nil {
		s.counts.Denied++
		writeErrors(w, http.StatusForbidden, fmt.Sprintf("preflight capability check returned 403, please ensure client's policies grant access to path %q", p+"/"))
		return
	}
	var options any
	if m.version > 0 {
		options = map[string]string{"version": strconv.Itoa(m.version)}
	}
	s.counts.MountReads++
	env := envelope()
	env["data"] = map[string]any{
		"accessor": m.accessor,
		"config": map[string]any{
			"default_lease_ttl": 0,
			"force_no_cache":    false,
			"max_lease_ttl":     0,
		},
		"description":             "key/value secret storage",
		"external_entropy_access": false,
		"local":                   false,
		"options":                 options,
		"path":                    name + "/",
		"plugin_version":          "",
		"running_plugin_version":  "v0.20.0+builtin",
		"running_sha256":          "",
		"seal_wrap":               false,
		"type":                    "kv",
		"uuid":                    m.uuid,
	}
	writeJSON(w, http.StatusOK, env)
}

func (s *Server) kv(w http.ResponseWriter, r *http.Request, p string, read bool) {
	name, m := s.findMount(p)
	if m == nil {
		writeErrors(w, http.StatusNotFound, fmt.Sprintf("no handler for route %q. route entry not found.", p))
		return
	}
	if s.authToken(w, r) == nil {
		return
	}
	s.lastReadToken = r.Header.Get("X-Vault-Token")
	if !read {
		writeErrors(w, http.StatusMethodNotAllowed, "unsupported operation")
		return
	}
	s.counts.SecretReads++
	rest := strings.TrimPrefix(strings.TrimPrefix(p, name), "/")
	if m.version != 2 {
		if s.denied[name+"/"+rest] {
			s.deny(w)
			return
		}
		e := m.entries[rest]
		if e == nil {
			writeErrors(w, http.StatusNotFound)
			return
		}
		env := envelope()
		env["lease_duration"] = 2764800 // KV version 1's default TTL hint, 768h
		env["data"] = e.data
		env["mount_type"] = "kv"
		writeJSON(w, http.StatusOK, env)
		return
	}
	key, ok := strings.CutPrefix(rest, "data/")
	if !ok {
		env := envelope()
		env["warnings"] = []string{"Invalid path for a versioned K/V secrets engine. See the API docs for the appropriate API endpoints to use. If using the Vault CLI, use 'vault kv get' for this operation."}
		writeJSON(w, http.StatusNotFound, env)
		return
	}
	if s.denied[name+"/"+key] {
		s.deny(w)
		return
	}
	e := m.entries[key]
	if e == nil || len(e.versions) == 0 {
		writeErrors(w, http.StatusNotFound)
		return
	}
	n := len(e.versions)
	if q := r.URL.Query().Get("version"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 0 {
			writeErrors(w, http.StatusBadRequest, "invalid version")
			return
		}
		if v > 0 {
			n = v
		}
	}
	if n > len(e.versions) {
		writeErrors(w, http.StatusNotFound)
		return
	}
	ver := e.versions[n-1]
	deletion := ""
	if !ver.deleted.IsZero() {
		deletion = ver.deleted.Format(time.RFC3339Nano)
	}
	env := envelope()
	env["mount_type"] = "kv"
	data := map[string]any{
		"data": ver.data,
		"metadata": map[string]any{
			"created_time":    ver.created.Format(time.RFC3339Nano),
			"custom_metadata": nil,
			"deletion_time":   deletion,
			"destroyed":       ver.destroyed,
			"version":         n,
		},
	}
	env["data"] = data
	// A deleted or destroyed version is answered with 404 and its metadata.
	if ver.destroyed || (!ver.deleted.IsZero() && !ver.deleted.After(s.nowLocked())) {
		data["data"] = nil
		writeJSON(w, http.StatusNotFound, env)
		return
	}
	writeJSON(w, http.StatusOK, env)
}

// ---- helpers ----

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeErrors answers as Vault does: {"errors":[...]}, an empty list for a
// plain 404.
func writeErrors(w http.ResponseWriter, status int, msgs ...string) {
	if msgs == nil {
		msgs = []string{}
	}
	writeJSON(w, status, map[string]any{"errors": msgs})
}

const alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func uuid() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
