package vault

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/caesium-io/caesium/schema"
)

// mountInfo is what a Vault is told about a mount, cached for tune.mountTTL
// (a KV version 1 mount can be upgraded to version 2 in place).
type mountInfo struct {
	version int // KV version, 1 or 2
	expires time.Time
}

// kvVersion returns the KV version of mount, asking Vault the first time and
// after the cache entry expired. Vault answers GET
// sys/internal/ui/mounts/MOUNT for any token that may use the mount (unlike
// sys/mounts, which needs a privileged policy), with the mount's type and
// options; options.version is "2" on a KV version 2 mount. The Vault CLI
// tells the versions apart the same way.
func (v *Vault) kvVersion(ctx context.Context, mount string) (int, error) {
	v.mountsMu.Lock()
	m, ok := v.mounts[mount]
	v.mountsMu.Unlock()
	if ok && v.tune.now().Before(m.expires) {
		return m.version, nil
	}
	var version int
	err := v.call(ctx, func(ctx context.Context, c *api.Client) error {
		s, err := c.Logical().ReadWithContext(ctx, "sys/internal/ui/mounts/"+mount)
		if err != nil {
			return err
		}
		version, err = parseMount(mount, s)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrPermissionDenied) {
			return 0, fmt.Errorf("mount %q does not exist or the token's policies do not allow it: %w", mount, err)
		}
		return 0, fmt.Errorf("look up mount %q: %w", mount, err)
	}
	v.mountsMu.Lock()
	v.mounts[mount] = mountInfo{version: version, expires: v.tune.now().Add(v.tune.mountTTL)}
	v.mountsMu.Unlock()
	return version, nil
}

func parseMount(mount string, s *api.Secret) (int, error) {
	if s == nil {
		// Vault before 0.10 has no such endpoint, and no KV version 2.
		return 1, nil
	}
	typ, _ := s.Data["type"].(string)
	switch typ {
	case "kv", "generic": // generic is KV version 1's old name
	default:
		return 0, fmt.Errorf("mount %q is a %q secrets engine; secret://vault reads KV secrets", mount, typ)
	}
	opts, _ := s.Data["options"].(map[string]any)
	if ver, _ := opts["version"].(string); ver == "2" {
		return 2, nil
	}
	return 1, nil
}

// read returns the data of the secret ref names.
func (v *Vault) read(ctx context.Context, ref schema.SecretRef) (map[string]any, error) {
	if gen, ok := v.session(); !ok {
		// Log in up front, so that a failed login is reported as one.
		if err := v.retry(ctx, func(ctx context.Context) error { return v.login(ctx, gen) }); err != nil {
			return nil, err
		}
	}
	version, err := v.kvVersion(ctx, ref.Mount)
	if err != nil {
		return nil, err
	}
	where := ref.Mount + "/" + ref.Path
	if version == 1 {
		if ref.Version > 0 {
			return nil, fmt.Errorf("?version=%d needs a KV version 2 mount, and %q is KV version 1", ref.Version, ref.Mount)
		}
		var data map[string]any
		err := v.call(ctx, func(ctx context.Context, c *api.Client) error {
			s, err := c.KVv1(ref.Mount).Get(ctx, ref.Path)
			if err != nil {
				return err
			}
			data = s.Data
			return nil
		})
		if errors.Is(err, api.ErrSecretNotFound) {
			return nil, &notFoundError{msg: fmt.Sprintf("no secret at %s", where)}
		}
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", where, err)
		}
		return data, nil
	}

	var s *api.KVSecret
	err = v.call(ctx, func(ctx context.Context, c *api.Client) error {
		var err error
		if ref.Version > 0 {
			s, err = c.KVv2(ref.Mount).GetVersion(ctx, ref.Path, ref.Version)
		} else {
			s, err = c.KVv2(ref.Mount).Get(ctx, ref.Path)
		}
		return err
	})
	which := "the latest version"
	if ref.Version > 0 {
		which = fmt.Sprintf("version %d", ref.Version)
	}
	if errors.Is(err, api.ErrSecretNotFound) {
		if ref.Version > 0 {
			return nil, &notFoundError{msg: fmt.Sprintf("no version %d of a secret at %s", ref.Version, where)}
		}
		return nil, &notFoundError{msg: fmt.Sprintf("no secret at %s", where)}
	}
	if err != nil {
		return nil, fmt.Errorf("read %s of %s: %w", which, where, err)
	}
	if s.Data == nil {
		// Vault answers a deleted or destroyed version with 404 and its
		// metadata, which the SDK returns as a secret without data.
		if md := s.VersionMetadata; md != nil {
			if md.Version > 0 && ref.Version == 0 {
				which = fmt.Sprintf("the latest version (%d)", md.Version)
			}
			if md.Destroyed {
				return nil, &notFoundError{msg: fmt.Sprintf("%s of %s was destroyed", which, where)}
			}
			if !md.DeletionTime.IsZero() {
				return nil, &notFoundError{msg: fmt.Sprintf("%s of %s was deleted at %s", which, where, md.DeletionTime.UTC().Format(time.RFC3339))}
			}
		}
		return nil, &notFoundError{msg: fmt.Sprintf("%s of %s has no data", which, where)}
	}
	return s.Data, nil
}

// render returns a field's value as text: a string as it is, anything else
// as JSON (numbers keep the digits Vault sent). null renders as "".
func render(v any) (string, error) {
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		// The error of encoding/json names a type, never the value.
		return "", fmt.Errorf("render as JSON: %w", err)
	}
	return strings.TrimSuffix(buf.String(), "\n"), nil
}
