#!/bin/bash
# Makes a throwaway CA and server certificates in DIR (made if missing),
# with the openssl command and a configuration file of its own (the
# system's openssl.cnf plays no part). Used by scripts/nginx.sh and the
# TLS tests.
#
#   tls-certs.sh DIR
#
# DIR then holds, each certificate with its key (NAME.key, P-256):
#   ca.crt          the CA ("aioc test CA"), valid for 30 days
#   good.crt        for localhost and 127.0.0.1, signed by the CA
#   expired.crt     the same names, signed by the CA, expired in 2020
#   selfsigned.crt  for 127.0.0.1 and localhost, self-signed
#   wronghost.crt   for wrong.example only, signed by the CA
# Exits non-zero when openssl fails (its messages on stderr).
set -eu
dir=${1:?usage: tls-certs.sh DIR}
mkdir -p "$dir"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
cd "$dir"
cat > openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
[wronghost_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth
subjectAltName = DNS:wrong.example
[ca]
default_ca = throwaway
[throwaway]
database = ca.db/index.txt
new_certs_dir = ca.db/new
serial = ca.db/serial
default_md = sha256
policy = anything
unique_subject = no
[anything]
commonName = supplied
EOF
cnf=(-config openssl.cnf)
openssl req "${cnf[@]}" -x509 "${ec[@]}" -keyout ca.key -out ca.crt \
  -days 30 -subj "/CN=aioc test CA" -extensions ca_ext
for s in good expired wronghost; do
  openssl req "${cnf[@]}" -new "${ec[@]}" -keyout $s.key -out $s.csr \
    -subj "/CN=${s/wronghost/wrong.example}"
done
openssl x509 -req -in good.csr -CA ca.crt -CAkey ca.key -set_serial 2 \
  -days 30 -extfile openssl.cnf -extensions server_ext -out good.crt
openssl x509 -req -in wronghost.csr -CA ca.crt -CAkey ca.key \
  -set_serial 3 -days 30 -extfile openssl.cnf -extensions wronghost_ext \
  -out wronghost.crt
# Expired: openssl x509 cannot date a certificate in the past, openssl
# ca can (with a one-off CA database).
mkdir -p ca.db/new
: > ca.db/index.txt
echo 04 > ca.db/serial
openssl ca "${cnf[@]}" -batch -cert ca.crt -keyfile ca.key \
  -in expired.csr -out expired.crt -notext -extensions server_ext \
  -startdate 20200101000000Z -enddate 20200201000000Z
openssl req "${cnf[@]}" -x509 "${ec[@]}" -keyout selfsigned.key \
  -out selfsigned.crt -days 30 -subj "/CN=127.0.0.1" -extensions server_ext
chmod 600 ./*.key
