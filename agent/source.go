package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/caesium-io/caesium/config"
	"github.com/caesium-io/caesium/providers/git"
	"github.com/caesium-io/caesium/reconcile"
	"github.com/caesium-io/caesium/schema"
	"github.com/caesium-io/caesium/store"
)

// Store is what the agent needs from the store. Errors wrap
// store.ErrNotFound, store.ErrConflict or store.ErrUnavailable.
type Store interface {
	reconcile.Store
	ListJobs(ctx context.Context, opts store.ListOptions) ([]store.Job, error)
	GetJob(ctx context.Context, alias string) (store.Job, error)
	UpsertSource(ctx context.Context, src store.Source) error
	GetSource(ctx context.Context, id string) (store.Source, error)
}

// Reasons a source is stalled, for its Stalled condition.
const (
	ReasonFetchFailed      = "FetchFailed"
	ReasonInvalidManifests = "InvalidManifests"
	ReasonUnverified       = "UnverifiedCommit"
	ReasonPruneRefused     = "PruneRefused"
	ReasonConflicts        = "Conflicts"
	ReasonApplyFailed      = "ApplyFailed"
	ReasonStoreUnavailable = "StoreUnavailable"
)

// SyncResult is the outcome of one reconcile of one source.
type SyncResult struct {
	SourceID string `json:"sourceId"`
	Repo     string `json:"repo"` // redacted
	Ref      string `json:"ref,omitempty"`
	Commit   string `json:"commit,omitempty"`
	// UpToDate is set when the commit was already applied: nothing was
	// read or planned.
	UpToDate    bool                `json:"upToDate,omitempty"`
	DryRun      bool                `json:"dryRun,omitempty"`
	Files       int                 `json:"files"`
	Jobs        int                 `json:"jobs"`
	Diagnostics []schema.Diagnostic `json:"diagnostics,omitempty"`
	Report      *reconcile.Report   `json:"report,omitempty"`
	// Reason and Error are set when the sync failed.
	Reason   string        `json:"reason,omitempty"`
	Error    string        `json:"error,omitempty"`
	Duration time.Duration `json:"durationNs"`
}

// Failed reports whether the sync failed or left work undone (a conflict,
// a failed write, a refused prune).
func (r *SyncResult) Failed() bool {
	return r.Error != "" || (r.Report != nil && r.Report.Failed())
}

// Changes reports whether the sync planned (or made) any write.
func (r *SyncResult) Changes() bool {
	if r.Report == nil {
		return false
	}
	s := r.Report.Summary
	return s.Created+s.Updated+s.Deleted > 0
}

// parsed is a manifest file parsed once and reused while its blob is unchanged.
type parsed struct {
	blob  string
	docs  []*schema.Document
	diags []schema.Diagnostic
}

// Source keeps the store in step with one Git repository.
type Source struct {
	cfg  config.Source
	repo *git.Repo
	// repoName is the repository as provenance, status and logs show it:
	// the URL without credentials, or a local path as configured.
	repoName string
	store    Store
	secrets  git.Resolver
	log      *slog.Logger
	now      func() time.Time
	limits   schema.Limits
	nudge    chan struct{}
	// progress, when set, receives human progress lines (a terminal).
	progress io.Writer

	// mu serialises syncs of this source and guards what follows.
	mu            sync.Mutex
	lastApplied   string
	lastAttempted string
	refused       string // the commit whose last apply was refused (conflicts, prune)
	status        store.SourceStatus
	cache         map[string]parsed // by file path
	parses        int               // files parsed rather than taken from cache, for tests
	// specs keeps the spec and hash of each document of the last sync, so
	// that an unchanged file costs no encoding either (provenance is set
	// per sync).
	specs map[*schema.Document]reconcile.Desired
}

// NewSource builds the syncer of one source. The repository is not
// contacted until the first sync.
func NewSource(cfg config.Source, dataDir string, st Store, secrets git.Resolver, log *slog.Logger) (*Source, error) {
	local := ""
	if fi, err := os.Stat(cfg.Repo); err == nil && fi.IsDir() {
		local = cfg.Repo
		// A local directory may be a subdirectory of a checkout (./jobs in
		// CI): sync the enclosing repository, below that directory.
		root, sub, err := git.LocateLocal(cfg.Repo)
		if err != nil {
			return nil, fmt.Errorf("source %s: %w", cfg.ID, err)
		}
		cfg.Repo, cfg.Path = root, strings.Trim(path.Join(sub, cfg.Path), "/")
		local = localName(root)
	}
	gcfg := git.Config{
		URL: cfg.Repo, Ref: cfg.Ref, Path: cfg.Path, Globs: cfg.Globs,
		Dir:     filepath.Join(dataDir, "sources", cfg.ID),
		Timeout: cfg.Timeout,
		Auth: git.Auth{
			Username: firstNonEmpty(cfg.Auth.Username, cfg.SSH.User), Password: cfg.Auth.Password,
			SSHKey: cfg.SSH.PrivateKey, SSHKeyPassphrase: cfg.SSH.Passphrase, KnownHosts: cfg.SSH.KnownHosts,
		},
		MaxFileBytes: schema.DefaultLimits.MaxFileBytes,
	}
	// Fail closed, and never poll in a tight loop, when a caller skipped
	// config's defaults.
	if cfg.OnInvalid != config.OnInvalidSkip {
		cfg.OnInvalid = config.OnInvalidFail
	}
	if cfg.Interval <= 0 {
		cfg.Interval = config.DefaultInterval
	}
	repo, err := git.New(gcfg, secrets, log)
	if err != nil {
		return nil, fmt.Errorf("source %s: %w", cfg.ID, err)
	}
	name := repo.Redacted()
	if local != "" {
		name = local
	}
	return &Source{
		cfg: cfg, repo: repo, repoName: name, store: st, secrets: secrets, log: log, now: time.Now,
		limits: schema.DefaultLimits, nudge: make(chan struct{}, 1), cache: map[string]parsed{},
	}, nil
}

// localName names a local repository for provenance: relative to the
// working directory when it is at or below it ("." for a CI job run from
// its checkout), so that a runner's changing checkout path does not rewrite
// every job's provenance on each run; absolute otherwise.
func localName(root string) string {
	if wd, err := os.Getwd(); err == nil {
		if rel, err := filepath.Rel(wd, root); err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return filepath.ToSlash(rel)
		}
	}
	return root
}

// ID is the source's id.
func (s *Source) ID() string { return s.cfg.ID }

// Redacted is the repository URL without credentials.
func (s *Source) Redacted() string { return s.repoName }

// Close releases the repository.
func (s *Source) Close() error { return s.repo.Close() }

// Nudge asks for a sync as soon as possible. Any number of nudges while a
// sync runs cause at most one more sync.
func (s *Source) Nudge() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// load restores what the store knows of the source, so that a restarted
// agent does not re-read an already applied commit.
func (s *Source) load(ctx context.Context) error {
	src, err := s.store.GetSource(ctx, s.cfg.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	st, err := src.DecodeStatus()
	if err != nil {
		s.log.Warn("ignoring unreadable source status", "err", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// A changed path or ref means the applied commit says nothing about
	// what the new configuration selects.
	if src.Repo == s.repoName && src.Ref == s.cfg.Ref && src.Path == s.cfg.Path {
		s.lastApplied = src.LastAppliedCommit
		s.lastAttempted = src.LastAttemptedCommit
	}
	s.status = st
	return nil
}

// Run polls the source until ctx ends: at once, then every interval with
// ±10% jitter, sooner when nudged, and with exponential backoff (1s up to
// the interval, at most 5m) after a failure. It returns nil when ctx ends.
func (s *Source) Run(ctx context.Context) error {
	if err := s.load(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("load source status", "err", err)
	}
	var backoff time.Duration
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		asked := false
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		case <-s.nudge:
			asked = true
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		}
		res := s.sync(ctx, false, asked)
		if ctx.Err() != nil {
			return nil
		}
		next := jitter(s.cfg.Interval)
		if res.Error != "" {
			backoff = min(max(2*backoff, time.Second), s.cfg.Interval, 5*time.Minute)
			next = jitter(backoff)
			s.log.Warn("sync failed", "reason", res.Reason, "err", res.Error, "retry_in", next.Round(time.Millisecond).String())
		} else {
			backoff = 0
		}
		timer.Reset(next)
	}
}

func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return d - d/10 + rand.N(d/5+1)
}

// Sync reconciles the source once: read the remote's commit; unless it is
// already applied, fetch it, read and validate its manifests, plan and (not
// in a dry run) apply. A dry run always plans, even for an applied commit.
func (s *Source) Sync(ctx context.Context, dryRun bool) *SyncResult {
	return s.sync(ctx, dryRun, false)
}

// sync is Sync; asked is set for a sync someone asked for (Nudge), whose
// attempt is recorded even when it finds nothing new, so that they see it
// happened (caesium source sync waits for it).
func (s *Source) sync(ctx context.Context, dryRun, asked bool) *SyncResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := s.now()
	res := &SyncResult{SourceID: s.cfg.ID, Repo: s.repoName, Ref: s.cfg.Ref, DryRun: dryRun}
	defer func() { res.Duration = s.now().Sub(start) }()

	commit, err := s.repo.Head(ctx)
	if err != nil {
		return s.fail(ctx, res, start, ReasonFetchFailed, fmt.Errorf("list refs: %w", err))
	}
	res.Commit = commit
	if commit == s.lastApplied && !dryRun {
		res.UpToDate = true
		s.upToDate(ctx, res, start, asked)
		return res
	}
	if !dryRun {
		s.setReconciling(ctx, commit, start)
	}
	s.report("fetching %s", short(commit))
	if err := s.repo.Fetch(ctx, commit); err != nil {
		return s.fail(ctx, res, start, ReasonFetchFailed, fmt.Errorf("fetch %s: %w", short(commit), err))
	}
	if err := s.verify(ctx, commit); err != nil {
		return s.fail(ctx, res, start, ReasonUnverified, err)
	}
	files, err := s.repo.Manifests(ctx, commit)
	if err != nil {
		return s.fail(ctx, res, start, ReasonFetchFailed, fmt.Errorf("read manifests at %s: %w", short(commit), err))
	}
	docs, badPaths, diags := s.parse(files)
	res.Files, res.Diagnostics = len(files), diags
	s.report("read %d manifest files: %d jobs", len(files), len(docs))
	if schema.HasErrors(diags) && s.cfg.OnInvalid == config.OnInvalidFail {
		return s.fail(ctx, res, start, ReasonInvalidManifests,
			fmt.Errorf("%d invalid manifest problem(s) at %s; nothing applied (first: %s)", schema.CountErrors(diags), short(commit), firstError(diags)))
	}
	desired := make([]reconcile.Desired, 0, len(docs))
	specs := make(map[*schema.Document]reconcile.Desired, len(docs))
	for _, d := range docs {
		des, ok := s.specs[d]
		if !ok {
			var err error
			if des, err = reconcile.NewDesired(d.Job, store.Provenance{}); err != nil {
				return s.fail(ctx, res, start, ReasonInvalidManifests, err)
			}
		}
		specs[d] = des
		des.Provenance = store.Provenance{SourceID: s.cfg.ID, Repo: s.repoName, Ref: s.cfg.Ref, Commit: commit, Path: d.File}
		desired = append(desired, des)
	}
	s.specs = specs
	res.Jobs = len(desired)
	actual, err := s.actual(ctx, desired)
	if err != nil {
		return s.fail(ctx, res, start, ReasonStoreUnavailable, err)
	}
	actual, kept := setAsideInvalid(actual, s.cfg.ID, badPaths, desired)
	cs, err := reconcile.Plan(desired, actual, reconcile.Options{
		SourceID: s.cfg.ID, Prune: s.cfg.Prune.On(), AllowEmpty: s.cfg.Prune.AllowEmpty, MaxDeletions: s.cfg.Prune.MaxDeletions,
	})
	if err != nil {
		return s.fail(ctx, res, start, ReasonInvalidManifests, err)
	}
	reportKept(cs, kept)
	if dryRun {
		rep := reconcile.Preview(cs)
		res.Report = &rep
		return res
	}
	var progress func(done, total int)
	if s.progress != nil {
		progress = func(done, total int) { s.report("applied %d of %d changed jobs", done, total) }
	}
	rep, err := reconcile.Apply(ctx, s.store, cs, reconcile.ApplyOptions{
		Atomic: s.cfg.Atomic, Actor: "agent", Revision: commit, Now: s.now, Progress: progress,
		// The history already holds this revision's refusal: retries that
		// only refuse again are not recorded again.
		QuietRefusals: commit == s.refused,
	})
	res.Report = rep
	if err != nil {
		return s.fail(ctx, res, start, ReasonStoreUnavailable, err)
	}
	if rep.PruneRefused != "" || rep.Summary.Conflicts > 0 {
		s.refused = commit
	} else {
		s.refused = ""
	}
	switch {
	case rep.PruneRefused != "":
		return s.fail(ctx, res, start, ReasonPruneRefused, errors.New(rep.PruneRefused))
	case rep.Summary.Conflicts > 0:
		return s.fail(ctx, res, start, ReasonConflicts, fmt.Errorf("%d job(s) owned by other sources; first: %s", rep.Summary.Conflicts, rep.FirstConflict()))
	case rep.Summary.Failed > 0:
		return s.fail(ctx, res, start, ReasonApplyFailed, fmt.Errorf("%d job(s) failed to apply; first: %s", rep.Summary.Failed, firstFailure(rep)))
	}
	s.lastApplied = commit
	s.succeed(ctx, res, start)
	return res
}

// report writes a progress line when a terminal is watching.
func (s *Source) report(format string, args ...any) {
	if s.progress != nil {
		fmt.Fprintf(s.progress, "%s: %s\n", s.cfg.ID, fmt.Sprintf(format, args...))
	}
}

// parse reads the manifests, reusing the parse of every file whose blob is
// unchanged. It returns the valid documents, the paths of files with errors
// (whose jobs must be neither updated nor pruned), and all diagnostics.
func (s *Source) parse(files []git.File) ([]*schema.Document, map[string]bool, []schema.Diagnostic) {
	var docs []*schema.Document
	var diags []schema.Diagnostic
	bad := map[string]bool{}
	next := make(map[string]parsed, len(files))
	for _, f := range files {
		if f.Err != nil {
			bad[f.Path] = true
			diags = append(diags, schema.Diagnostic{File: f.Path, Line: 1, Column: 1, Severity: schema.SeverityError, Message: f.Err.Error()})
			continue
		}
		p, ok := s.cache[f.Path]
		if !ok || p.blob != f.Blob || f.Blob == "" {
			s.parses++
			fileDocs, fileDiags := schema.Parse(f.Path, f.Data, s.limits)
			for _, d := range fileDocs {
				fileDiags = append(fileDiags, d.Diagnostics...)
			}
			p = parsed{blob: f.Blob, docs: fileDocs, diags: fileDiags}
		}
		next[f.Path] = p
		diags = append(diags, p.diags...)
		if schema.HasErrors(p.diags) {
			bad[f.Path] = true
			continue
		}
		docs = append(docs, p.docs...)
	}
	s.cache = next
	set := schema.CheckSet(docs)
	if len(set) > 0 {
		// A duplicate alias makes both files suspect: drop the later uses.
		dup := map[string]bool{}
		for _, d := range set {
			if d.Severity == schema.SeverityError {
				bad[d.File] = true
				dup[d.File] = true
			}
		}
		kept := docs[:0]
		for _, d := range docs {
			if !dup[d.File] {
				kept = append(kept, d)
			}
		}
		docs = kept
		diags = append(diags, set...)
	}
	schema.SortDiagnostics(diags)
	return docs, bad, diags
}

// maxSpecReads is how many changed jobs have their stored spec read one by
// one; past it, one listing with every spec is cheaper.
const maxSpecReads = 100

// actual lists the live jobs for the plan. The plan compares hashes, and
// needs a stored spec only for the field diff of a job whose hash changed:
// so the listing leaves specs out (most of a row's bytes) and the few
// changed jobs are read whole.
func (s *Source) actual(ctx context.Context, desired []reconcile.Desired) ([]store.Job, error) {
	actual, err := s.store.ListJobs(ctx, store.ListOptions{OmitSpec: true})
	if err != nil {
		return nil, err
	}
	hashes := make(map[string]string, len(desired))
	for _, d := range desired {
		hashes[d.Job.Metadata.Alias] = d.Hash
	}
	var changed []int
	for i, j := range actual {
		if h, ok := hashes[j.Alias]; ok && h != j.Hash && j.DeletedAt == nil {
			changed = append(changed, i)
		}
	}
	if len(changed) > maxSpecReads {
		return s.store.ListJobs(ctx, store.ListOptions{})
	}
	for _, i := range changed {
		j, err := s.store.GetJob(ctx, actual[i].Alias)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile: the apply finds out
		}
		if err != nil {
			return nil, err
		}
		if j.ID == actual[i].ID && j.Version == actual[i].Version {
			actual[i].Spec = j.Spec
		}
	}
	return actual, nil
}

// setAsideInvalid takes out of actual the source's live jobs whose manifest
// is invalid in this revision and that no valid manifest declares. With
// onInvalid skip a broken file keeps its jobs as they are: left in the plan
// they would be prune candidates, and even when kept afterwards they would
// count against prune's guards (more than maxDeletions, or "the revision
// declares no jobs"), refusing a prune that deletes nothing.
func setAsideInvalid(actual []store.Job, sourceID string, bad map[string]bool, desired []reconcile.Desired) (rest, kept []store.Job) {
	if len(bad) == 0 {
		return actual, nil
	}
	declared := make(map[string]bool, len(desired))
	for _, d := range desired {
		declared[d.Job.Metadata.Alias] = true
	}
	rest = make([]store.Job, 0, len(actual))
	for _, j := range actual {
		if j.DeletedAt == nil && j.Provenance.SourceID == sourceID && bad[j.Provenance.Path] && !declared[j.Alias] {
			kept = append(kept, j)
			continue
		}
		rest = append(rest, j)
	}
	return rest, kept
}

// reportKept adds the jobs set aside by setAsideInvalid to the plan as
// unchanged, saying why.
func reportKept(cs *reconcile.Changeset, kept []store.Job) {
	if len(kept) == 0 {
		return
	}
	for i := range kept {
		cs.Changes = append(cs.Changes, reconcile.Change{
			Action: reconcile.ActionUnchanged, Alias: kept[i].Alias, Actual: &kept[i],
			Reason: "kept: its manifest " + kept[i].Provenance.Path + " is invalid in this revision",
		})
	}
	slices.SortStableFunc(cs.Changes, func(a, b reconcile.Change) int { return strings.Compare(a.Alias, b.Alias) })
}

// verify checks the head commit's signature when the source requires it.
func (s *Source) verify(ctx context.Context, commit string) error {
	if s.cfg.Verify.Mode == "" {
		return nil
	}
	keys := make([]string, 0, len(s.cfg.Verify.Keys))
	for _, k := range s.cfg.Verify.Keys {
		if schema.IsSecretRef(k) {
			v, err := s.secrets.Resolve(ctx, k)
			if err != nil {
				return fmt.Errorf("resolve verification key: %w", err)
			}
			k = v
		}
		keys = append(keys, k)
	}
	fp, err := s.repo.VerifyCommit(ctx, commit, keys)
	if err != nil {
		return fmt.Errorf("commit %s is not applied: %w", short(commit), err)
	}
	s.log.Debug("commit signature verified", "commit", commit, "key", fp)
	return nil
}

func (s *Source) setReconciling(ctx context.Context, commit string, at time.Time) {
	s.status.SetCondition(store.Condition{Type: store.ConditionReconciling, Status: true, Reason: "NewCommit", Message: "syncing " + short(commit), LastTransitionTime: at})
	s.save(ctx, commit)
}

// upToDate records a poll that found the applied commit. While the source
// is in step a poll costs no write, unless the sync was asked for; after a
// failure (a git server or database outage that ended without a new commit)
// it is the recovery, and the status says so.
func (s *Source) upToDate(ctx context.Context, res *SyncResult, start time.Time, asked bool) {
	s.status.LastAttemptAt = &start
	ready, _ := s.status.Condition(store.ConditionReady)
	stalled, _ := s.status.Condition(store.ConditionStalled)
	reconciling, _ := s.status.Condition(store.ConditionReconciling)
	if ready.Status && !stalled.Status && !reconciling.Status {
		if asked {
			s.save(ctx, res.Commit)
		}
		return
	}
	now := s.now()
	s.status.LastError = ""
	s.status.SetCondition(store.Condition{Type: store.ConditionReconciling, Status: false, Reason: "Idle", LastTransitionTime: now})
	s.status.SetCondition(store.Condition{Type: store.ConditionStalled, Status: false, Reason: "Synced", LastTransitionTime: now})
	s.status.SetCondition(store.Condition{Type: store.ConditionReady, Status: true, Reason: "Applied",
		Message: fmt.Sprintf("applied %s", short(res.Commit)), LastTransitionTime: now})
	s.status.AddRecord(record(res, start, now.Sub(start), "unchanged"))
	s.save(ctx, res.Commit)
	s.log.Info("in step again", "commit", res.Commit)
}

func (s *Source) succeed(ctx context.Context, res *SyncResult, start time.Time) {
	now := s.now()
	s.status.LastAttemptAt, s.status.LastAppliedAt, s.status.LastError = &start, &now, ""
	s.status.SetCondition(store.Condition{Type: store.ConditionReconciling, Status: false, Reason: "Idle", LastTransitionTime: now})
	s.status.SetCondition(store.Condition{Type: store.ConditionStalled, Status: false, Reason: "Synced", LastTransitionTime: now})
	s.status.SetCondition(store.Condition{Type: store.ConditionReady, Status: true, Reason: "Applied",
		Message: fmt.Sprintf("applied %s", short(res.Commit)), LastTransitionTime: now})
	s.status.AddRecord(record(res, start, now.Sub(start), "applied"))
	s.save(ctx, res.Commit)
	s.log.Info("synced", "commit", res.Commit, "files", res.Files, "jobs", res.Jobs,
		"created", res.Report.Summary.Created, "updated", res.Report.Summary.Updated, "deleted", res.Report.Summary.Deleted,
		"duration_ms", now.Sub(start).Milliseconds())
}

// fail records a failed sync. The last applied state stays as it is.
func (s *Source) fail(ctx context.Context, res *SyncResult, start time.Time, reason string, err error) *SyncResult {
	res.Reason, res.Error = reason, err.Error()
	if res.DryRun {
		return res
	}
	now := s.now()
	if ctx.Err() != nil {
		// Cut short (the agent stopping, leadership lost): not a failure of
		// the source, which must not show Stalled with "context canceled".
		// Only the Reconciling set at the start is taken back.
		s.status.SetCondition(store.Condition{Type: store.ConditionReconciling, Status: false, Reason: "Interrupted", LastTransitionTime: now})
		s.save(ctx, res.Commit)
		return res
	}
	s.status.LastAttemptAt, s.status.LastError = &start, res.Error
	s.status.SetCondition(store.Condition{Type: store.ConditionReconciling, Status: false, Reason: "Idle", LastTransitionTime: now})
	s.status.SetCondition(store.Condition{Type: store.ConditionStalled, Status: true, Reason: reason, Message: res.Error, LastTransitionTime: now})
	s.status.SetCondition(store.Condition{Type: store.ConditionReady, Status: false, Reason: reason, Message: res.Error, LastTransitionTime: now})
	result := "failed"
	if reason == ReasonInvalidManifests {
		result = "invalid"
	}
	s.status.AddRecord(record(res, start, now.Sub(start), result))
	s.save(ctx, res.Commit)
	return res
}

func record(res *SyncResult, start time.Time, d time.Duration, result string) store.SyncRecord {
	r := store.SyncRecord{Commit: res.Commit, StartedAt: start, DurationMS: d.Milliseconds(), Result: result, Error: res.Error}
	if res.Report != nil {
		s := res.Report.Summary
		r.Created, r.Updated, r.Deleted, r.Unchanged, r.Conflicts, r.Failed = s.Created, s.Updated, s.Deleted, s.Unchanged, s.Conflicts, s.Failed
	}
	return r
}

// save writes the status. A store outage is logged, not fatal: the status
// is written again with the next sync.
func (s *Source) save(ctx context.Context, attempted string) {
	// A failed ref listing knows no commit: keep showing the last one tried.
	if attempted == "" {
		attempted = s.lastAttempted
	}
	s.lastAttempted = attempted
	b, err := json.Marshal(s.status)
	if err != nil {
		s.log.Error("encode source status", "err", err)
		return
	}
	src := store.Source{
		ID: s.cfg.ID, Repo: s.repoName, Ref: s.cfg.Ref, Path: s.cfg.Path,
		LastAttemptedCommit: attempted, LastAppliedCommit: s.lastApplied, Status: b,
	}
	if err := s.store.UpsertSource(context.WithoutCancel(ctx), src); err != nil {
		s.log.Warn("save source status", "err", err)
	}
}

// Status returns a copy of the source's current status.
func (s *Source) Status() store.SourceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, _ := json.Marshal(s.status)
	var st store.SourceStatus
	_ = json.Unmarshal(b, &st)
	return st
}

func short(commit string) string {
	if len(commit) > 12 {
		return commit[:12]
	}
	return commit
}

func firstNonEmpty(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

func firstError(diags []schema.Diagnostic) string {
	for _, d := range diags {
		if d.Severity == schema.SeverityError {
			return d.String()
		}
	}
	return ""
}

func firstFailure(r *reconcile.Report) string {
	var msgs []string
	for _, o := range r.Outcomes {
		if o.Error != "" {
			msgs = append(msgs, o.Alias+": "+o.Error)
		}
	}
	sort.Strings(msgs)
	if len(msgs) == 0 {
		return ""
	}
	return strings.Join(msgs[:1], "")
}
