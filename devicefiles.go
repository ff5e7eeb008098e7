package onesoidc

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// DevicePaths names the files px-device-identity writes for a device. A zero field takes its
// default.
type DevicePaths struct {
	// Config is the device configuration (default /etc/px-device-identity/device.yml).
	Config string
	// Key is the private key file of key_security "default" devices (default
	// /root/.local/share/px-device-identity/private.pem). Devices with key_security "tpm" have none.
	Key string
	// RegisteredJWK is the public JWK px-device-identity registered (default:
	// public_jwk.json in the directory of Key). It is read when it exists.
	RegisteredJWK string
	// SignerURL is the signing endpoint of px-device-identity-service for key_security "tpm"
	// devices (default http://localhost:8000/sign).
	SignerURL string
}

// defaultDevicePaths returns where px-device-identity writes a device's files (the registered
// JWK: beside the key).
func defaultDevicePaths() DevicePaths {
	return DevicePaths{Config: defaultDeviceConfigPath, Key: defaultDeviceKeyPath, SignerURL: defaultRemoteSignerURL}
}

// withDefaults fills the zero fields from d.
func (p DevicePaths) withDefaults(d DevicePaths) DevicePaths {
	if p.Config == "" {
		p.Config = d.Config
	}
	if p.Key == "" {
		p.Key = d.Key
	}
	if p.RegisteredJWK == "" {
		p.RegisteredJWK = registeredJWKBeside(p.Key)
	}
	if p.SignerURL == "" {
		p.SignerURL = d.SignerURL
	}
	return p
}

// NewClientFromDevice builds a ready client from the files px-device-identity wrote, in one call:
// it loads the device configuration (LoadDeviceConfig), picks the signer by its key_security —
// the private key file for "default" (LoadPrivateKey), px-device-identity-service for "tpm"
// (NewRemoteSigner, with the device id and the algorithm of key_type) — reads the public JWK
// registered for the key when it exists, so that assertions carry its "kid" (or none) and "alg",
// discovers the provider at the device's issuer (NewClient) and returns the client. The client
// talks ONES (see WithStandardCIBA). opts reach every step: the key options (WithKeyID,
// WithInsecureKeyFilePermissions ...) the key loading, the signer options (WithSignerPublicJWK
// ...) the remote signer, and the client options the client; the key file warnings and the
// signer log to the client's logger.
//
// A key_type that does not fit the key (or the registered JWK of a "tpm" device) is a
// *ConfigError, as are every error of the steps above.
//
// A device file missing (or unreadable) at its default path is a *ConfigError that says so and
// what to do; errors.Is(err, fs.ErrNotExist) holds for a missing file.
func NewClientFromDevice(ctx context.Context, paths DevicePaths, opts ...Option) (*OpenIDConnectClient, error) {
	return newClientFromDevice(ctx, paths, defaultDevicePaths(), opts)
}

// newClientFromDevice is NewClientFromDevice with the default paths given.
func newClientFromDevice(ctx context.Context, paths, defaults DevicePaths, opts []Option) (*OpenIDConnectClient, error) {
	_, err := buildOptions(opts)
	if err != nil {
		return nil, err
	}
	given := paths
	paths = paths.withDefaults(defaults)
	cfg, err := LoadDeviceConfig(paths.Config)
	if err != nil {
		if given.Config == "" {
			hintDefaultPath(err, paths.Config, "the px-device-identity default; on a machine that is not a registered device, set DevicePaths.Config")
		}
		return nil, err
	}
	var signer Signer
	if strings.EqualFold(cfg.KeySecurity, keySecurityTPM) {
		signer, err = remoteDeviceSigner(cfg, paths, opts)
	} else {
		signer, err = localDeviceKey(cfg, paths, opts)
		if err != nil && given.Key == "" {
			hintDefaultPath(err, paths.Key, "the px-device-identity default, which root owns: run as root, or set DevicePaths.Key")
		}
	}
	if err != nil {
		return nil, err
	}
	return NewClient(ctx, cfg, signer, opts...)
}

// hintDefaultPath adds to the reason of a *ConfigError saying that the default path cannot be
// opened (it does not exist, or cannot be read) what the caller can do about it.
func hintDefaultPath(err error, path, hint string) {
	var ce *ConfigError
	if errors.As(err, &ce) && ce.File == path && (errors.Is(ce.Err, fs.ErrNotExist) || errors.Is(ce.Err, fs.ErrPermission)) {
		ce.Reason += " (" + hint + ")"
	}
}

// localDeviceKey loads the private key of a key_security "default" device and checks it
// against key_type.
func localDeviceKey(cfg *DeviceConfig, paths DevicePaths, opts []Option) (*DeviceKey, error) {
	regPath := paths.RegisteredJWK
	if _, err := os.Stat(regPath); errors.Is(err, fs.ErrNotExist) {
		regPath = "" // px-device-identity registered no JWK file here: nothing to go on
	}
	key, err := LoadPrivateKey(paths.Key, append([]Option{WithRegisteredJWK(regPath)}, opts...)...)
	if err != nil {
		return nil, err
	}
	if err := checkKeyType(cfg, key.Algorithm()); err != nil {
		return nil, err
	}
	return key, nil
}

// remoteDeviceSigner makes the px-device-identity-service signer of a key_security "tpm"
// device: the algorithm and kid of the registered JWK when there is one, else the algorithm of
// key_type and no kid.
func remoteDeviceSigner(cfg *DeviceConfig, paths DevicePaths, opts []Option) (*RemoteSigner, error) {
	reg, err := loadRegisteredIfPresent(paths.RegisteredJWK)
	if err != nil {
		return nil, err
	}
	alg, kid := "", ""
	if reg != nil {
		algs, _ := registeredAlgs(reg.Public)
		alg, kid = reg.Algorithm, reg.KeyID
		if alg == "" {
			alg = algs[0]
		}
	}
	if alg == "" {
		if alg, err = cfg.KeyAlgorithm(); err != nil {
			return nil, err
		}
	} else if err := checkKeyType(cfg, alg); err != nil {
		return nil, err
	}
	return NewRemoteSigner(cfg.ID, alg, append([]Option{WithSignerURL(paths.SignerURL), WithSignerKeyID(kid)}, opts...)...)
}

// checkKeyType reports a key_type that does not fit a key signing alg (RSA keys may sign PS256).
func checkKeyType(cfg *DeviceConfig, alg string) error {
	if cfg.KeyType == "" {
		return nil
	}
	want, err := cfg.KeyAlgorithm()
	if err != nil {
		return err
	}
	if want == alg || (want == "RS256" && alg == "PS256") {
		return nil
	}
	return &ConfigError{File: cfg.path, Field: "key_type",
		Reason: fmt.Sprintf("%s does not fit the device key, which signs %s", cfg.KeyType, alg)}
}
