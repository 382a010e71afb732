// Certificates for mutual TLS on the trees (`banyan certs`).
export { makeCertificates } from "./certificates.js";
