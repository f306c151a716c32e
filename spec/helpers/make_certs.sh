#!/bin/sh
# make_certs.sh DIR: the test TLS material, made with the openssl CLI in DIR
# (EC P-256 keys: fast), for the specs (spec/helpers' tls_certs), the
# conformance run and the bench. Prints "made" last when all went well.
#   ca.pem/.key       the test CA
#   server            CN localhost, SAN DNS:localhost and IP:127.0.0.1, by the CA
#   wrong             SAN DNS:other.test only, by the CA
#   client            CN cosocket test client, clientAuth, by the CA
#   inter, leaf       an intermediate CA, and a localhost leaf it signed;
#                     chain.pem holds leaf + intermediate
#   with_root.pem     server.pem followed by ca.pem
#   self              CN/SAN localhost, signed by its own key
#   expired, notyet   as server, valid in January 2020 only / from 2099 on
# (NAME.pem the certificate, NAME.key its key)
set -e
cd "$1"
cat > openssl.cnf <<'EOF'
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = unused
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ localhost ]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost, IP:127.0.0.1
extendedKeyUsage = serverAuth
[ other ]
basicConstraints = CA:FALSE
subjectAltName = DNS:other.test
extendedKeyUsage = serverAuth
[ client ]
basicConstraints = CA:FALSE
extendedKeyUsage = clientAuth
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = .
serial = serial.txt
default_md = sha256
policy = any
unique_subject = no
[ any ]
commonName = supplied
EOF
export OPENSSL_CONF="$PWD/openssl.cnf"
key() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1.key"; }
csr() { key "$1"; openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"; }
# sign NAME ISSUER SECTION SERIAL
sign() {
  openssl x509 -req -in "$1.csr" -CA "$2.pem" -CAkey "$2.key" -set_serial "$4" \
    -days 3650 -extfile openssl.cnf -extensions "$3" -out "$1.pem"
}
key ca
openssl req -x509 -new -key ca.key -subj "/CN=cosocket test CA" -days 3650 \
  -extensions ca_ext -out ca.pem
csr server /CN=localhost;  sign server ca localhost 1001
csr wrong /CN=other.test;  sign wrong ca other 1002
csr client "/CN=cosocket test client"; sign client ca client 1003
csr inter "/CN=cosocket test intermediate"; sign inter ca ca_ext 1004
csr leaf /CN=localhost;    sign leaf inter localhost 1005
cat leaf.pem inter.pem > chain.pem
cat server.pem ca.pem > with_root.pem
key self
openssl req -x509 -new -key self.key -subj /CN=localhost -days 3650 \
  -extensions localhost -out self.pem
: > index.txt; echo 2001 > serial.txt
csr expired /CN=localhost
openssl ca -batch -notext -cert ca.pem -keyfile ca.key -in expired.csr -out expired.pem \
  -extensions localhost -extfile openssl.cnf \
  -startdate 20200101000000Z -enddate 20200201000000Z
csr notyet /CN=localhost
openssl ca -batch -notext -cert ca.pem -keyfile ca.key -in notyet.csr -out notyet.pem \
  -extensions localhost -extfile openssl.cnf \
  -startdate 20990101000000Z -enddate 21000101000000Z
echo made
