package weblogin

import (
	"context"
	"errors"

	"github.com/ones-now/onesoidc"
)

// Until the ONES QR API is merged: stand-ins.
func qrSessionID(*onesoidc.QRSession) string { return "" }

func checkQRStatus(context.Context, *onesoidc.OpenIDConnectClient, string) (*onesoidc.LoginResult, error) {
	return nil, errors.New("weblogin: QR status not available")
}
