package git

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ProtonMail/go-crypto/openpgp"
	"github.com/ProtonMail/go-crypto/openpgp/armor"
	pgperrors "github.com/ProtonMail/go-crypto/openpgp/errors"
	"github.com/ProtonMail/go-crypto/openpgp/packet"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/storer"
)

// VerifyMode says which commits of a source must carry a trusted signature.
type VerifyMode string

const (
	// VerifyOff applies revisions whether they are signed or not.
	VerifyOff VerifyMode = ""
	// VerifyHead requires the head commit of each revision to be signed by
	// one of the source's keys (VerifyCommit). Only the head is checked:
	// fetches are shallow, so the history below it is not there to check,
	// and the head's tree is all that is applied.
	VerifyHead VerifyMode = "head"
)

// Validate returns an error wrapping ErrConfig for an unknown mode.
func (m VerifyMode) Validate() error {
	switch m {
	case VerifyOff, VerifyHead:
		return nil
	}
	return fmt.Errorf("%w: verify.mode %q: want %q (or empty for off)", ErrConfig, string(m), string(VerifyHead))
}

// Signature errors, wrapped by VerifyCommit with the commit SHA. Both mean
// the revision must not be applied; a human has to sign the commit or
// change the source's keys, so retrying as-is will not help.
var (
	// ErrUnsigned: the commit carries no signature.
	ErrUnsigned = errors.New("commit is not signed")
	// ErrUntrustedSignature: the commit is signed, but not validly by one
	// of the given keys: an unknown key, a signature that does not match
	// the commit, an expired or revoked key, or a signature that is not
	// OpenPGP (SSH, X.509). The message says which.
	ErrUntrustedSignature = errors.New("commit signature not trusted")
)

const (
	pgpSignatureBegin = "-----BEGIN PGP SIGNATURE-----"
	pgpArmorBegin     = "-----BEGIN PGP "
	pgpArmorEnd       = "-----END PGP "
)

// VerifyCommit checks that commit, which must be present (fetched, or in a
// local source), carries a valid OpenPGP signature made by one of
// armoredKeys, as git verify-commit would with only those keys in the
// keyring. It returns the fingerprint of the signer's primary key (upper-case
// hex, as gpg --fingerprint shows it without spaces), also when a subkey
// made the signature.
//
// Each element of armoredKeys is either armored OpenPGP public key text
// (gpg --armor --export; one or several blocks) or a secret:// reference to
// such text. Keys are checked at the current time: a key that has expired
// or has been revoked (with its revocation in the given text) no longer
// verifies anything, including commits it signed while valid; git does the
// same.
//
// Errors: ErrUnsigned; ErrUntrustedSignature naming the signer's key ID;
// ErrConfig for an empty key list, a key that does not parse or a private
// key given as one (naming its index in armoredKeys; only a literal that
// holds no armor at all is quoted, by its first 16 characters);
// ErrNotFound when the commit is not present. All but ErrConfig are wrapped
// with the commit SHA.
func (r *Repo) VerifyCommit(ctx context.Context, commit string, armoredKeys []string) (fingerprint string, err error) {
	h, err := parseCommit(commit)
	if err != nil {
		return "", err
	}
	err = r.run(ctx, "verify", func(ctx context.Context) error {
		ring, err := r.keyRing(ctx, armoredKeys)
		if err != nil {
			return err
		}
		return r.withObjects(func(s storer.EncodedObjectStorer) error {
			c, err := object.GetCommit(s, h)
			if errors.Is(err, plumbing.ErrObjectNotFound) {
				return fmt.Errorf("%w: commit %s is not present (fetch it first)", ErrNotFound, h)
			}
			if err != nil {
				return &damageError{fmt.Errorf("commit %s: %w", h, err)}
			}
			fingerprint, err = verifyCommit(c, ring)
			if err != nil {
				return fmt.Errorf("commit %s: %w", h, err)
			}
			return nil
		})
	})
	return fingerprint, err
}

// CheckVerifyKeys parses keys as VerifyCommit does, so that a configuration
// can be refused when it is loaded. secret:// references are skipped: they
// are resolved, and checked, on use. Errors wrap ErrConfig.
func CheckVerifyKeys(keys []string) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: verify.keys: at least one public key is required", ErrConfig)
	}
	for i, k := range keys {
		if isSecretRef(k) {
			continue
		}
		if _, err := parseKeys(i, k, true); err != nil {
			return err
		}
	}
	return nil
}

// keyRing resolves and parses the keys into one keyring.
func (r *Repo) keyRing(ctx context.Context, keys []string) (openpgp.EntityList, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("%w: verify.keys: at least one public key is required", ErrConfig)
	}
	var ring openpgp.EntityList
	for i, k := range keys {
		literal := !isSecretRef(k)
		if !literal && r.secrets == nil {
			return nil, fmt.Errorf("%w: verify.keys[%d] is a secret reference but no resolver was given", ErrConfig, i)
		}
		text, err := r.resolve(ctx, fmt.Sprintf("verify.keys[%d]", i), k)
		if err != nil {
			return nil, err
		}
		el, err := parseKeys(i, text, literal)
		if err != nil {
			return nil, err
		}
		ring = append(ring, el...)
	}
	return ring, nil
}

// parseKeys reads every armored public key block in text, the i-th
// configured key. The start of the text is quoted in errors only when it
// is a literal from the configuration, not a resolved secret.
func parseKeys(i int, text string, literal bool) (openpgp.EntityList, error) {
	blocks := splitArmor(text)
	if len(blocks) == 0 {
		hint := ""
		if literal {
			hint = fmt.Sprintf(" (it starts %q)", truncate(strings.TrimSpace(text), 16))
		}
		return nil, fmt.Errorf("%w: verify.keys[%d]: no armored OpenPGP public key%s; give the output of gpg --armor --export",
			ErrConfig, i, hint)
	}
	var ring openpgp.EntityList
	for j, b := range blocks {
		where := fmt.Sprintf("verify.keys[%d]", i)
		if len(blocks) > 1 {
			where += fmt.Sprintf(" block %d", j+1)
		}
		block, err := armor.Decode(strings.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: bad armor: %v", ErrConfig, where, err)
		}
		switch block.Type {
		case openpgp.PublicKeyType:
		case openpgp.PrivateKeyType:
			return nil, fmt.Errorf("%w: %s is a private key; give the public key (gpg --armor --export)", ErrConfig, where)
		default:
			return nil, fmt.Errorf("%w: %s is a %q block, not a public key", ErrConfig, where, block.Type)
		}
		el, err := openpgp.ReadKeyRing(block.Body)
		if err == nil && len(el) == 0 {
			err = errors.New("no key in block")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: %s: not an OpenPGP public key: %v", ErrConfig, where, err)
		}
		for _, e := range el {
			if e.PrivateKey != nil {
				return nil, fmt.Errorf("%w: %s holds a private key; give the public key (gpg --armor --export)", ErrConfig, where)
			}
		}
		ring = append(ring, el...)
	}
	return ring, nil
}

// splitArmor returns the armored blocks in text. armor.Decode reads ahead,
// so several blocks in one reader cannot be decoded one after the other.
func splitArmor(text string) []string {
	var blocks []string
	for {
		i := lineIndex(text, pgpArmorBegin)
		if i < 0 {
			return blocks
		}
		text = text[i:]
		j := lineIndex(text, pgpArmorEnd)
		if j < 0 {
			return append(blocks, text) // armor.Decode reports it
		}
		end := len(text)
		if k := strings.IndexByte(text[j:], '\n'); k >= 0 {
			end = j + k + 1
		}
		blocks = append(blocks, text[:end])
		text = text[end:]
	}
}

// lineIndex is the index of the first line of s that starts with prefix
// (leading blanks allowed), or -1.
func lineIndex(s, prefix string) int {
	off := 0
	for off < len(s) {
		line := s[off:]
		if k := strings.IndexByte(line, '\n'); k >= 0 {
			line = line[:k+1]
		}
		if t := strings.TrimLeft(line, " \t"); strings.HasPrefix(t, prefix) {
			return off + len(line) - len(t)
		}
		off += len(line)
	}
	return -1
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// verifyCommit checks c's signature against ring and returns the signer's
// primary key fingerprint.
func verifyCommit(c *object.Commit, ring openpgp.EntityList) (string, error) {
	sigText := c.PGPSignature
	if strings.TrimSpace(sigText) == "" {
		return "", ErrUnsigned
	}
	if n := strings.Count("\n"+sigText, "\n-----BEGIN "); n > 1 {
		// As git: which one would count is ambiguous.
		return "", fmt.Errorf("%w: %d signature blocks; only one is supported", ErrUntrustedSignature, n)
	}
	if !strings.HasPrefix(sigText, pgpSignatureBegin) {
		return "", fmt.Errorf("%w: %s; only OpenPGP signatures are supported", ErrUntrustedSignature, signatureKind(sigText))
	}
	block, err := armor.Decode(strings.NewReader(sigText))
	if err != nil {
		return "", fmt.Errorf("%w: malformed signature: %v", ErrUntrustedSignature, err)
	}
	raw, err := io.ReadAll(block.Body)
	if err != nil {
		return "", fmt.Errorf("%w: malformed signature: %v", ErrUntrustedSignature, err)
	}
	sig, err := onlySignature(raw)
	if err != nil {
		return "", fmt.Errorf("%w: malformed signature: %v", ErrUntrustedSignature, err)
	}
	signer := "key ID " + keyID(sig)

	payload := &plumbing.MemoryObject{}
	if err := c.EncodeWithoutSignature(payload); err != nil {
		return "", err
	}
	signed, err := payload.Reader()
	if err != nil {
		return "", err
	}
	defer signed.Close()

	// A nil config checks keys, bindings and the signature at the current
	// time.
	e, err := openpgp.CheckDetachedSignature(ring, signed, bytes.NewReader(raw), nil)
	switch {
	case err == nil:
		return strings.ToUpper(hex.EncodeToString(e.PrimaryKey.Fingerprint)), nil
	case errors.Is(err, pgperrors.ErrUnknownIssuer):
		if len(ring.KeysById(*sig.IssuerKeyId)) > 0 {
			return "", fmt.Errorf("%w: signed by %s, which is given but not valid for signing", ErrUntrustedSignature, signer)
		}
		return "", fmt.Errorf("%w: signed by %s, which is not one of the given keys", ErrUntrustedSignature, signer)
	case errors.Is(err, pgperrors.ErrKeyExpired):
		return "", fmt.Errorf("%w: signed by %s, which has expired", ErrUntrustedSignature, signer)
	case errors.Is(err, pgperrors.ErrKeyRevoked):
		return "", fmt.Errorf("%w: signed by %s, which is revoked", ErrUntrustedSignature, signer)
	case errors.Is(err, pgperrors.ErrSignatureExpired):
		return "", fmt.Errorf("%w: signature by %s has expired", ErrUntrustedSignature, signer)
	default:
		return "", fmt.Errorf("%w: signature by %s does not verify (commit altered after signing?): %v",
			ErrUntrustedSignature, signer, err)
	}
}

// onlySignature parses raw as exactly one signature packet with an issuer.
func onlySignature(raw []byte) (*packet.Signature, error) {
	pr := packet.NewReader(bytes.NewReader(raw))
	p, err := pr.Next()
	if err != nil {
		return nil, err
	}
	sig, ok := p.(*packet.Signature)
	if !ok {
		return nil, fmt.Errorf("%T packet instead of a signature", p)
	}
	if sig.IssuerKeyId == nil {
		return nil, errors.New("signature names no issuer key")
	}
	if _, err := pr.Next(); err != io.EOF {
		return nil, errors.New("more than one packet; only one signature is supported")
	}
	return sig, nil
}

func keyID(sig *packet.Signature) string {
	return fmt.Sprintf("%016X", *sig.IssuerKeyId)
}

// signatureKind names a non-OpenPGP signature by its armor line.
func signatureKind(sig string) string {
	switch {
	case strings.HasPrefix(sig, "-----BEGIN SSH SIGNATURE-----"):
		return "SSH signature"
	case strings.HasPrefix(sig, "-----BEGIN SIGNED MESSAGE-----"),
		strings.HasPrefix(sig, "-----BEGIN CERTIFICATE-----"):
		return "X.509 signature"
	case strings.HasPrefix(sig, "-----BEGIN PGP MESSAGE-----"):
		return "inline OpenPGP message, not a detached signature"
	}
	return "unknown signature format"
}
