package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/caesium-io/caesium/schema"
)

// Delivery is the outcome of one callback: Error is empty when it was
// delivered (a 2xx answer).
type Delivery struct {
	URL        string    `json:"url"`
	Event      string    `json:"event"`                // run.succeeded, run.failed or run.cancelled
	StatusCode int       `json:"statusCode,omitempty"` // of the last attempt; 0: no answer
	Attempts   int       `json:"attempts"`             // requests sent; 0 when none was
	Error      string    `json:"error,omitempty"`
	At         time.Time `json:"at"` // when the last attempt ended
}

// RunSummary is what a callback receives about a run. Task outputs are
// never sent.
type RunSummary struct {
	RunID      int64       `json:"runId"`
	Job        string      `json:"job"`
	JobVersion int64       `json:"jobVersion"`
	Status     string      `json:"status"`
	Trigger    string      `json:"trigger"`
	Error      string      `json:"error,omitempty"`
	StartedAt  time.Time   `json:"startedAt,omitzero"`
	FinishedAt time.Time   `json:"finishedAt,omitzero"`
	Tasks      []TaskState `json:"tasks"`
}

// Callback events: the X-Caesium-Event header and Delivery.Event.
const (
	EventRunSucceeded = "run.succeeded"
	EventRunFailed    = "run.failed"
	EventRunCancelled = "run.cancelled"
)

// Callback defaults.
const (
	DefaultCallbackTimeout     = 10 * time.Second
	DefaultCallbackMaxAttempts = 3
	DefaultCallbackBackoff     = time.Second
	DefaultUserAgent           = "caesium"
)

// callbackClient is the default client: it never follows a redirect (the
// headers, secrets among them, would go to another URL), and it has a
// transport of its own, so connections are kept alive across runs and no
// other code's CloseIdleConnections on http.DefaultTransport breaks a
// delivery in flight.
var callbackClient = &http.Client{
	Transport:     http.DefaultTransport.(*http.Transport).Clone(),
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// CallbackOptions configure SendCallbacks. The zero value works.
type CallbackOptions struct {
	// Client sends the requests. nil: a client that does not follow
	// redirects (a redirect would carry the callback's headers, secrets
	// included, to another URL), so a 3xx answer is a failed delivery.
	Client *http.Client
	// Resolver resolves secret:// header values at send time. nil: such a
	// header fails its callback, which is then not sent.
	Resolver Resolver
	// Redact is applied to error texts and to the errors in the payload.
	// nil: identity (the resolved header values are scrubbed regardless).
	Redact func(string) string
	// Timeout of one attempt, response included. 0: 10s.
	Timeout time.Duration
	// MaxAttempts per callback. 0: 3.
	MaxAttempts int
	// Backoff before the second attempt, doubled before each next one. 0: 1s.
	Backoff time.Duration
	// Clock times the backoff and stamps Delivery.At. nil: real time.
	Clock Clock
	// UserAgent header. "": "caesium".
	UserAgent string
}

func (o CallbackOptions) withDefaults() CallbackOptions {
	if o.Client == nil {
		o.Client = callbackClient
	}
	if o.Redact == nil {
		o.Redact = func(s string) string { return s }
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultCallbackTimeout
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = DefaultCallbackMaxAttempts
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultCallbackBackoff
	}
	if o.Clock == nil {
		o.Clock = realClock{}
	}
	if o.UserAgent == "" {
		o.UserAgent = DefaultUserAgent
	}
	return o
}

// eventOf maps a run status to the callback `on` value and the event name;
// ok is false for statuses that send nothing (queued, running, skipped).
func eventOf(status string) (on, event string, ok bool) {
	switch status {
	case RunSucceeded:
		return schema.OnSuccess, EventRunSucceeded, true
	case RunFailed:
		return schema.OnFailure, EventRunFailed, true
	case RunCancelled:
		return schema.OnFailure, EventRunCancelled, true
	}
	return "", "", false
}

// callbackPayload is the JSON body: the summary and the event.
type callbackPayload struct {
	Event string `json:"event"`
	RunSummary
}

// SendCallbacks POSTs sum as JSON to each of job's callbacks whose `on`
// includes the run's outcome (succeeded: success; failed and cancelled:
// failure), all at once, and returns one Delivery per callback sent, in the
// job's order. Other run statuses send nothing. It returns when every
// delivery has succeeded or given up; cancelling ctx stops the retries.
func SendCallbacks(ctx context.Context, job *schema.Job, sum RunSummary, o CallbackOptions) []Delivery {
	on, event, ok := eventOf(sum.Status)
	if job == nil || !ok {
		return nil
	}
	o = o.withDefaults()
	var targets []schema.Callback
	for _, c := range job.Callbacks {
		// A nil `on` is the default, both outcomes (schema.Normalize).
		if c.On == nil || slices.Contains(c.On, on) {
			targets = append(targets, c)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	body, err := json.Marshal(callbackPayload{Event: event, RunSummary: o.clean(sum)})
	if err != nil { // cannot happen for these types
		panic(fmt.Sprintf("executor: marshal callback payload: %v", err))
	}
	out := make([]Delivery, len(targets))
	var wg sync.WaitGroup
	for i, c := range targets {
		wg.Go(func() { out[i] = o.deliver(ctx, c, event, sum.RunID, body) })
	}
	wg.Wait()
	return out
}

// clean strips the outputs from the summary and redacts its errors.
func (o CallbackOptions) clean(sum RunSummary) RunSummary {
	sum.Error = o.Redact(sum.Error)
	tasks := make([]TaskState, len(sum.Tasks))
	for i, t := range sum.Tasks {
		t.Output = ""
		t.Error = o.Redact(t.Error)
		tasks[i] = t
	}
	sum.Tasks = tasks
	return sum
}

func (o CallbackOptions) deliver(ctx context.Context, c schema.Callback, event string, runID int64, body []byte) (d Delivery) {
	d = Delivery{URL: c.URL, Event: event}
	defer func() { d.At = o.Clock.Now() }()
	if c.Type != "" && c.Type != schema.CallbackWebhook {
		d.Error = fmt.Sprintf("callback type %q is not supported", c.Type)
		return d
	}
	headers, secrets, err := o.headers(ctx, c, event, runID)
	if err != nil {
		d.Error = o.Redact(scrub(err.Error(), secrets))
		return d
	}
	backoff := o.Backoff
	for attempt := 1; ; attempt++ {
		d.Attempts = attempt
		code, retry, err := o.post(ctx, c.URL, headers, body, secrets)
		d.StatusCode = code
		if err == nil {
			d.Error = ""
			return d
		}
		d.Error = o.Redact(scrub(err.Error(), secrets))
		if !retry || attempt >= o.MaxAttempts || ctx.Err() != nil {
			return d
		}
		select {
		case <-o.Clock.After(backoff):
		case <-ctx.Done():
			return d
		}
		backoff *= 2
	}
}

// headers builds the request headers. Secret values are resolved now, at
// send time, and returned for scrubbing; the error names the header and the
// reference, never a value.
func (o CallbackOptions) headers(ctx context.Context, c schema.Callback, event string, runID int64) (http.Header, []string, error) {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", o.UserAgent)
	var secrets, errs []string
	for _, name := range slices.Sorted(maps.Keys(c.Headers)) {
		v := c.Headers[name]
		if schema.IsSecretRef(v) {
			val, err := resolve(ctx, o.Resolver, v)
			if err != nil {
				errs = append(errs, "header "+name+": "+err.Error())
				continue
			}
			secrets = append(secrets, val)
			v = val
		}
		h.Set(name, v)
	}
	if len(errs) > 0 {
		return nil, secrets, errors.New(strings.Join(errs, "; "))
	}
	// Set last: a callback's own headers cannot forge them.
	h.Set("X-Caesium-Event", event)
	h.Set("X-Caesium-Run-Id", strconv.FormatInt(runID, 10))
	// The same on every attempt, so a receiver can drop a retry it already
	// acted on. It also lets net/http resend a request that failed on a
	// kept-alive connection the receiver had just closed, instead of
	// counting that as a failed attempt.
	h.Set("Idempotency-Key", fmt.Sprintf("caesium-run-%d-%s", runID, event))
	return h, secrets, nil
}

// post sends one attempt. retry says whether another attempt may help:
// network errors, timeouts, 5xx and 429 yes; other answers no.
func (o CallbackOptions) post(ctx context.Context, url string, h http.Header, body []byte, secrets []string) (code int, retry bool, err error) {
	actx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, false, fmt.Errorf("build request: %w", err)
	}
	req.Header = h.Clone()
	resp, err := o.Client.Do(req)
	if err != nil {
		switch {
		case ctx.Err() != nil:
			return 0, false, fmt.Errorf("cancelled: %w", context.Cause(ctx))
		case actx.Err() != nil:
			return 0, true, fmt.Errorf("no response within %s", o.Timeout)
		}
		return 0, true, err
	}
	defer resp.Body.Close()
	// Read past the part shown, so that a secret the server echoes is
	// scrubbed whole before the text is cut.
	read := 1 << 10
	for _, v := range secrets {
		read = max(read, len(v)+(1<<10))
	}
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, int64(read)))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, false, nil
	}
	err = fmt.Errorf("HTTP %s", resp.Status)
	text := o.Redact(scrub(string(snippet), secrets))
	if len(snippet) == read {
		// The body may go on: the last bytes read can start a secret that
		// no scrubbing finds, and scrubbing or collapsing whitespace could
		// bring them into view. Keep only what is shown of an unchanged text
		// (and one byte more, so that the cut is marked).
		text = text[:max(0, len(text)-(read-maxBodyInError-1))]
	}
	if text := oneLine(text); text != "" {
		err = fmt.Errorf("HTTP %s: %s", resp.Status, text)
	}
	retry = resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests
	return resp.StatusCode, retry, err
}

// maxBodyInError bounds the part of a response body quoted in an error.
const maxBodyInError = 200

// oneLine makes a response body fit in an error message: one line, at most
// maxBodyInError bytes, cut on a rune boundary.
func oneLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= maxBodyInError {
		return s
	}
	cut := maxBodyInError
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}
