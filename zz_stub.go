package onesoidc

type DeviceConfig struct{ ID, ClientID, Host string }

func (c *DeviceConfig) Validate() error  { return nil }
func (c *DeviceConfig) IssuerURL() string { return c.Host + "/oidc" }
