package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/caesium-io/caesium/api"
	"github.com/caesium-io/caesium/api/client"
	"github.com/caesium-io/caesium/schema"
)

// maxTriggerBody bounds what --data reads; the agent's own limit
// (triggers.maxBodyBytes, 1 MiB by default) is lower still.
const maxTriggerBody = 16 << 20

// triggerAnswer is the JSON body of every answer of POST /v1/triggers/{path}.
type triggerAnswer struct {
	Result string `json:"result"`
	Reason string `json:"reason,omitempty"`
	RunID  int64  `json:"runId,omitempty"`
	Job    string `json:"job,omitempty"`
	Status string `json:"status,omitempty"`
}

func newTriggerCmd(getenv func(string) string) *cobra.Command {
	var (
		secretEnv   string
		scheme      string
		data        string
		contentType string
		output      string
	)
	cmd := &cobra.Command{
		Use:   "trigger URL --secret-env NAME",
		Short: "Start a job through its HTTP trigger, signing the request as the agent expects",
		Long: `trigger sends a POST to a job's HTTP trigger (the agent's /v1/triggers/PATH)
and proves it knows the trigger's shared secret: with hmac-sha256 (the
default) it signs the timestamp and the body into X-Caesium-Timestamp and
X-Caesium-Signature; with bearer it sends the secret as a bearer token.

The secret is read from the environment variable named by --secret-env, so it
never appears in the process list or the shell history, and it is never
printed. A signed request is accepted once: two calls with the same body
within the same second count as one (the second is a duplicate).

Exit status: 0 when the run was queued, 1 when the agent refused or recorded
it as skipped or failed (or on any other error), 2 on usage errors.`,
		Example: `  export DEPLOY_HOOK_SECRET="$(vault kv get -field=secret kv/hooks/deploy)"
  caesium trigger https://caesium.internal:8080/v1/triggers/hooks/deploy --secret-env DEPLOY_HOOK_SECRET
  caesium trigger "$URL" --secret-env DEPLOY_HOOK_SECRET --data @payload.json
  echo '{"reason":"hotfix"}' | caesium trigger "$URL" --secret-env DEPLOY_HOOK_SECRET --data -`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			if output != "text" && output != "json" {
				return usagef("--output must be text or json, not %q", output)
			}
			u, err := url.Parse(args[0])
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usagef("URL %q must be an http or https URL such as http://127.0.0.1:8080/v1/triggers/hooks/deploy", args[0])
			}
			if scheme != schema.SignatureHMACSHA256 && scheme != schema.SignatureBearer {
				return usagef("--scheme must be %s or %s, not %q", schema.SignatureHMACSHA256, schema.SignatureBearer, scheme)
			}
			if secretEnv == "" {
				return usagef("--secret-env must name the environment variable that holds the trigger's secret")
			}
			secret := getenv(secretEnv)
			if secret == "" {
				return usagef("environment variable %s is unset or empty; it must hold the trigger's secret", secretEnv)
			}
			body, err := readTriggerData(data, cmd.InOrStdin())
			if err != nil {
				return err
			}
			req, err := http.NewRequestWithContext(cmd.Context(), http.MethodPost, u.String(), bytes.NewReader(body))
			if err != nil {
				return err
			}
			if len(body) > 0 {
				req.Header.Set("Content-Type", contentType)
			}
			req.Header.Set("Accept", "application/json")
			switch scheme {
			case schema.SignatureBearer:
				req.Header.Set("Authorization", "Bearer "+secret)
			default:
				now := time.Now()
				req.Header.Set(api.HeaderTriggerTimestamp, fmt.Sprint(now.Unix()))
				req.Header.Set(api.HeaderTriggerSignature, api.SignTrigger(secret, now, body))
			}
			hc := &http.Client{Timeout: time.Minute}
			resp, err := hc.Do(req)
			if err != nil {
				// The error names the URL, never a header.
				return fmt.Errorf("trigger %s: %w", u.Redacted(), client.UnwrapURLError(err))
			}
			defer resp.Body.Close()
			raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			if err != nil {
				return fmt.Errorf("read the answer of %s: %w", u.Redacted(), err)
			}
			var a triggerAnswer
			if json.Unmarshal(raw, &a) != nil || a.Result == "" {
				// Not a trigger's answer: the API's (a wrong path), a proxy's.
				var e api.ErrorResponse
				msg := strings.TrimSpace(string(raw))
				if json.Unmarshal(raw, &e) == nil && e.Error != "" {
					msg = e.Error
				}
				if msg == "" {
					msg = resp.Status
				}
				return fmt.Errorf("trigger %s: %s (HTTP %d)", u.Redacted(), msg, resp.StatusCode)
			}
			out := cmd.OutOrStdout()
			switch {
			case output == "json":
				if err := writeJSONValue(out, a); err != nil {
					return err
				}
			case resp.StatusCode == http.StatusAccepted || a.RunID != 0:
				// Queued, or recorded as skipped or failed: an outcome.
				if err := writeTriggerAnswer(out, a, resp.StatusCode); err != nil {
					return err
				}
			default:
				var b strings.Builder
				_ = writeTriggerAnswer(&b, a, resp.StatusCode)
				return fmt.Errorf("trigger refused: %s", strings.TrimSpace(b.String()))
			}
			if resp.StatusCode != http.StatusAccepted {
				return exitError{code: 1}
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&secretEnv, "secret-env", "", "name of the environment variable holding the trigger's shared secret (required)")
	fl.StringVar(&scheme, "scheme", schema.SignatureHMACSHA256, "the trigger's signatureScheme: hmac-sha256 or bearer")
	fl.StringVar(&data, "data", "", "request body: TEXT, @FILE to read a file, or - for standard input")
	fl.StringVar(&contentType, "content-type", "application/json", "Content-Type of a non-empty body")
	fl.StringVarP(&output, "output", "o", "text", "output format: text or json")
	usageFlags(cmd)
	return cmd
}

// readTriggerData reads the body that --data names.
func readTriggerData(data string, stdin io.Reader) ([]byte, error) {
	var r io.Reader
	name := "--data"
	switch {
	case data == "-":
		r, name = stdin, "standard input"
	case strings.HasPrefix(data, "@"):
		f, err := os.Open(data[1:])
		if err != nil {
			return nil, fmt.Errorf("--data: %w", err)
		}
		defer f.Close()
		r, name = f, data[1:]
	default:
		return []byte(data), nil
	}
	body, err := io.ReadAll(io.LimitReader(r, maxTriggerBody+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(body) > maxTriggerBody {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxTriggerBody)
	}
	return body, nil
}

func writeTriggerAnswer(w io.Writer, a triggerAnswer, status int) error {
	var line string
	switch {
	case a.RunID != 0:
		line = fmt.Sprintf("run %d of %s %s", a.RunID, a.Job, a.Result)
	case a.Job != "":
		line = fmt.Sprintf("%s: %s", a.Job, a.Result)
	default:
		line = a.Result
	}
	if a.Reason != "" {
		line += ": " + a.Reason
	}
	if status != http.StatusAccepted {
		line += fmt.Sprintf(" (HTTP %d)", status)
	}
	_, err := fmt.Fprintln(w, line)
	return err
}
