package config_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/caesium-io/caesium/config"
)

// TestVaultConfig loads secrets.vault with each auth method, from a file and
// from the environment, and checks what lands.
func TestVaultConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		file string
		env  []string
		want config.Secrets
	}{
		{
			name: "no vault section leaves vault off",
			file: "secrets:\n  fileDir: /run/secrets\n",
			want: config.Secrets{FileDir: "/run/secrets"},
		},
		{
			name: "token from a file, every connection key",
			file: `
secrets:
  fileDir: /run/secrets
  cacheTTL: 30s
  vault:
    address: https://vault.internal:8200
    namespace: platform
    caCert: /etc/caesium/vault-ca.pem
    timeout: 5s
    maxRetries: 2
    auth:
      method: token
      tokenFile: /run/secrets/vault-token
`,
			want: config.Secrets{FileDir: "/run/secrets", CacheTTL: 30 * time.Second, Vault: &config.Vault{
				Address: "https://vault.internal:8200", Namespace: "platform", CACert: "/etc/caesium/vault-ca.pem",
				Timeout: 5 * time.Second, MaxRetries: 2,
				Auth: config.VaultAuth{Method: "token", TokenFile: "/run/secrets/vault-token"},
			}},
		},
		{
			name: "token from an environment variable, method left out",
			file: "secrets:\n  vault:\n    address: http://127.0.0.1:8200\n    auth: {tokenEnv: VAULT_AGENT_TOKEN}\n",
			want: config.Secrets{Vault: &config.Vault{Address: "http://127.0.0.1:8200", Auth: config.VaultAuth{TokenEnv: "VAULT_AGENT_TOKEN"}}},
		},
		{
			name: "approle with files and a wrapped secret id",
			file: `
secrets:
  vault:
    address: https://vault.internal:8200
    auth:
      method: approle
      mountPath: auth-approle-ci
      roleIdFile: /run/secrets/vault-role-id
      secretIdFile: /run/secrets/vault-secret-id
      wrappedSecretId: true
`,
			want: config.Secrets{Vault: &config.Vault{Address: "https://vault.internal:8200", Auth: config.VaultAuth{
				Method: "approle", MountPath: "auth-approle-ci", RoleIDFile: "/run/secrets/vault-role-id",
				SecretIDFile: "/run/secrets/vault-secret-id", WrappedSecretID: true,
			}}},
		},
		{
			name: "approle with a role id and the secret id in the environment",
			file: "secrets:\n  vault:\n    address: https://vault.internal:8200\n    auth: {method: approle, roleId: 9b1f-role, secretIdEnv: VAULT_SECRET_ID}\n",
			want: config.Secrets{Vault: &config.Vault{Address: "https://vault.internal:8200", Auth: config.VaultAuth{
				Method: "approle", RoleID: "9b1f-role", SecretIDEnv: "VAULT_SECRET_ID",
			}}},
		},
		{
			name: "kubernetes",
			file: `
secrets:
  vault:
    address: https://vault.vault.svc:8200
    auth:
      method: kubernetes
      role: caesium-agent
      mountPath: k8s-prod
      serviceAccountTokenPath: /var/run/secrets/tokens/vault
`,
			want: config.Secrets{Vault: &config.Vault{Address: "https://vault.vault.svc:8200", Auth: config.VaultAuth{
				Method: "kubernetes", Role: "caesium-agent", MountPath: "k8s-prod", ServiceAccountTokenPath: "/var/run/secrets/tokens/vault",
			}}},
		},
		{
			name: "kubernetes with the default token path",
			file: "secrets:\n  vault:\n    address: https://vault.vault.svc:8200\n    auth: {method: kubernetes, role: caesium-agent}\n",
			want: config.Secrets{Vault: &config.Vault{Address: "https://vault.vault.svc:8200", Auth: config.VaultAuth{Method: "kubernetes", Role: "caesium-agent"}}},
		},
		{
			name: "approle from the environment alone",
			env: []string{
				"CAESIUM_SECRETS_VAULT_ADDRESS=https://vault.internal:8200",
				"CAESIUM_SECRETS_VAULT_TIMEOUT=3s",
				"CAESIUM_SECRETS_VAULT_AUTH_METHOD=approle",
				"CAESIUM_SECRETS_VAULT_AUTH_ROLE_ID_FILE=/run/secrets/role-id",
				"CAESIUM_SECRETS_VAULT_AUTH_SECRET_ID_FILE=/run/secrets/secret-id",
				"CAESIUM_SECRETS_VAULT_AUTH_WRAPPED_SECRET_ID=true",
			},
			want: config.Secrets{Vault: &config.Vault{Address: "https://vault.internal:8200", Timeout: 3 * time.Second, Auth: config.VaultAuth{
				Method: "approle", RoleIDFile: "/run/secrets/role-id", SecretIDFile: "/run/secrets/secret-id", WrappedSecretID: true,
			}}},
		},
		{
			name: "the environment overrides the file",
			file: "secrets:\n  vault:\n    address: https://old:8200\n    auth: {tokenFile: /old}\n",
			env:  []string{"CAESIUM_SECRETS_VAULT_ADDRESS=https://new:8200", "CAESIUM_SECRETS_VAULT_AUTH_TOKEN_FILE=/new"},
			want: config.Secrets{Vault: &config.Vault{Address: "https://new:8200", Auth: config.VaultAuth{TokenFile: "/new"}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			if tt.file != "" {
				args = []string{"--config", writeConfig(t, tt.file)}
			}
			c, err := load(t, args, tt.env)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if !reflect.DeepEqual(c.Secrets, tt.want) {
				t.Errorf("secrets = %s\nwant      %s", show(c.Secrets), show(tt.want))
			}
		})
	}
}

// show prints secrets with the Vault section dereferenced.
func show(s config.Secrets) string {
	if s.Vault == nil {
		return fmt.Sprintf("%+v", s)
	}
	return fmt.Sprintf("{FileDir:%s CacheTTL:%s Vault:%+v}", s.FileDir, s.CacheTTL, *s.Vault)
}

// TestVaultConfigErrors: a secrets.vault section that cannot work is refused
// at load, naming the key; a credential written into the file (there is no
// key for one) is refused without being repeated.
func TestVaultConfigErrors(t *testing.T) {
	t.Parallel()
	const literalToken = "hvs.CAESIUMliteralTokenNeverEchoed"
	tests := []struct {
		name    string
		file    string
		env     []string
		wantErr []string
	}{
		{
			name:    "no address",
			file:    "secrets:\n  vault:\n    auth: {tokenFile: /t}\n",
			wantErr: []string{"secrets.vault.address is required"},
		},
		{
			name:    "token auth without a token",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n",
			wantErr: []string{"secrets.vault.auth", "tokenFile or tokenEnv"},
		},
		{
			name:    "approle without a role id",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n    auth: {method: approle, secretIdFile: /s}\n",
			wantErr: []string{"secrets.vault.auth", "roleId or roleIdFile"},
		},
		{
			name:    "approle without a secret id",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n    auth: {method: approle, roleIdFile: /r}\n",
			wantErr: []string{"secrets.vault.auth", "secretIdFile or secretIdEnv"},
		},
		{
			name:    "kubernetes without a role",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n    auth: {method: kubernetes}\n",
			wantErr: []string{"secrets.vault.auth", "kubernetes needs role"},
		},
		{
			name:    "unknown method",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n    auth: {method: userpass}\n",
			wantErr: []string{`secrets.vault.auth.method "userpass"`, "token, approle or kubernetes"},
		},
		{
			name:    "all problems at once",
			file:    "secrets:\n  vault:\n    auth: {method: approle}\n",
			wantErr: []string{"secrets.vault.address is required", "roleId or roleIdFile", "secretIdFile or secretIdEnv"},
		},
		{
			name:    "a token written into the file",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n    auth: {token: " + literalToken + "}\n",
			wantErr: []string{`unknown key "secrets.vault.auth.token"`, "tokenFile", "tokenEnv"},
		},
		{
			name:    "a secret id written into the file",
			file:    "secrets:\n  vault:\n    address: https://v:8200\n    auth: {method: approle, roleId: r, secretId: " + literalToken + "}\n",
			wantErr: []string{`unknown key "secrets.vault.auth.secretid"`, "secretIdFile"},
		},
		{
			name:    "a misspelt key",
			file:    "secrets:\n  vault:\n    adress: https://v:8200\n",
			wantErr: []string{`unknown key "secrets.vault.adress"`, "address"},
		},
		{
			name:    "a timeout that does not parse",
			env:     []string{"CAESIUM_SECRETS_VAULT_ADDRESS=https://v:8200", "CAESIUM_SECRETS_VAULT_AUTH_TOKEN_FILE=/t", "CAESIUM_SECRETS_VAULT_TIMEOUT=soon"},
			wantErr: []string{"secrets.vault.timeout", "invalid duration"},
		},
		{
			name:    "an address alone from the environment",
			env:     []string{"CAESIUM_SECRETS_VAULT_ADDRESS=https://v:8200"},
			wantErr: []string{"secrets.vault.auth", "tokenFile or tokenEnv"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var args []string
			if tt.file != "" {
				args = []string{"--config", writeConfig(t, tt.file)}
			}
			c, err := load(t, args, tt.env)
			if err == nil {
				t.Fatalf("Load succeeded with secrets %s; want an error with %q", show(c.Secrets), tt.wantErr)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if strings.Contains(err.Error(), literalToken) {
				t.Errorf("the error repeats the credential: %v", err)
			}
		})
	}
}
