package auth

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"k8s.io/apimachinery/pkg/util/validation"
)

// CertScheme is the URI scheme of the subject alternative name that makes
// a client certificate a fleetscan principal:
//
//	fleetscan://operator/NAME
//	fleetscan://tenant/TENANT/NAME
//	fleetscan://worker/CLUSTER_ID
//
// The server trusts it only in a certificate that chains to its client CA
// (fleetscan-server --client-ca).
const CertScheme = "fleetscan"

// fromCertificate returns the principal of the call's verified client
// certificate.
func fromCertificate(ctx context.Context) (Principal, error) {
	pr, ok := peer.FromContext(ctx)
	if !ok {
		return Principal{}, errUnauthenticated
	}
	info, ok := pr.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return Principal{}, errUnauthenticated
	}
	p, err := PrincipalOfCertificate(info.State.VerifiedChains[0][0])
	if err != nil {
		return Principal{}, status.Error(codes.Unauthenticated, err.Error())
	}
	return p, nil
}

// PrincipalOfCertificate maps a verified client certificate to the
// principal its fleetscan:// URI SAN names.
func PrincipalOfCertificate(cert *x509.Certificate) (Principal, error) {
	var found []*url.URL
	for _, u := range cert.URIs {
		if u.Scheme == CertScheme {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		return Principal{}, certError{fmt.Sprintf("%d fleetscan:// URI SANs; want exactly one, like fleetscan://tenant/acme/ci", len(found))}
	}
	u := found[0]
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	label := func(s string) bool { return len(validation.IsDNS1123Label(s)) == 0 }
	switch {
	case u.Host == string(RoleOperator) && len(parts) == 1 && parts[0] != "":
		return Principal{Role: RoleOperator, Name: parts[0] + " (certificate)"}, nil
	case u.Host == string(RoleTenant) && len(parts) == 2 && label(parts[0]) && parts[1] != "":
		return Principal{Role: RoleTenant, Tenant: parts[0], Name: parts[1] + " (certificate)"}, nil
	case u.Host == string(RoleWorker) && len(parts) == 1 && label(parts[0]):
		return Principal{Role: RoleWorker, ClusterID: parts[0], Name: "worker of " + parts[0] + " (certificate)"}, nil
	}
	return Principal{}, certError{"unrecognised principal " + u.String() + "; want fleetscan://operator/NAME, fleetscan://tenant/TENANT/NAME or fleetscan://worker/CLUSTER"}
}

type certError struct{ msg string }

func (e certError) Error() string { return "client certificate: " + e.msg }
