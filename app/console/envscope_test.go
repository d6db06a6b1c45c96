package console

import (
	"strings"
	"testing"
)

// ENV_CREDENTIALS_SCOPE: first (the default) or all; anything else stops
// start-up naming the variable.
func TestConfigEnvCredentialsScope(t *testing.T) {
	for _, tt := range []struct {
		value, want string
	}{
		{"", "first"},
		{"first", "first"},
		{" all ", "all"},
	} {
		c, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, "ENV_CREDENTIALS_SCOPE": tt.value}))
		if err != nil || c.EnvCredentialsScope != tt.want {
			t.Errorf("ENV_CREDENTIALS_SCOPE=%q: %q %v, want %q", tt.value, c.EnvCredentialsScope, err, tt.want)
		}
	}
	for _, bad := range []string{"every", "First", "1"} {
		_, err := LoadConfig(envOf(map[string]string{"AVA_SECRET_KEY": testKey, "ENV_CREDENTIALS_SCOPE": bad}))
		if err == nil || !strings.HasPrefix(err.Error(), "ENV_CREDENTIALS_SCOPE: ") || !strings.Contains(err.Error(), "first, all") {
			t.Errorf("ENV_CREDENTIALS_SCOPE=%q: %v, want an error naming the variable and its values", bad, err)
		}
	}
}
