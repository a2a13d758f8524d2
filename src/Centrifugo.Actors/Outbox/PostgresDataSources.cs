using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace Centrifugo.Actors.Outbox;

/// <summary>Builds the Npgsql data sources of a postgresql consumer: DSN conversion and the TLS block.</summary>
/// <remarks>
/// TLS block (applied to <c>dsn</c> only, like Centrifugo; <c>partition_notification_dsn</c> uses its own
/// sslmode parameters): <c>enabled</c> turns TLS on and, like Go's crypto/tls, verifies the certificate chain
/// (against <c>server_ca_pem</c> if given, else the system roots) and the host name (<c>server_name</c> if given,
/// else the DSN host); <c>insecure_skip_verify</c> accepts any server certificate; <c>cert_pem</c>/<c>key_pem</c>
/// are the client certificate. PEM values may be a file path, raw PEM or base64-encoded PEM.
/// </remarks>
internal static class PostgresDataSources
{
    /// <param name="keepAliveSeconds">Npgsql keepalive query interval; 0 = off (the pooled store never idles inside a query).</param>
    public static NpgsqlDataSource Create(string dsn, TlsOptions? tls, bool pooling, ILoggerFactory loggerFactory, int keepAliveSeconds = 0)
    {
        var csb = PostgresDsn.ToBuilder(dsn);
        csb.Pooling = pooling;
        if (keepAliveSeconds > 0)
        {
            csb.KeepAlive = keepAliveSeconds;
        }

        csb.ApplicationName ??= "centrifugo-actors";
        // The store owns every session it uses and never changes session state, so no reset on return to the pool.
        csb.NoResetOnClose = true;
        // Automatic preparation comes from the DSN (off for pgx's PgBouncer settings, see PostgresDsn).
        var builder = new NpgsqlDataSourceBuilder(csb.ConnectionString);
        builder.UseLoggerFactory(loggerFactory);
        if (tls is { Enabled: true })
        {
            ApplyTls(builder, csb, tls);
        }

        return builder.Build();
    }

    private static void ApplyTls(NpgsqlDataSourceBuilder builder, NpgsqlConnectionStringBuilder csb, TlsOptions tls)
    {
        // We validate the server ourselves (Go semantics, server_name support), so Npgsql only has to encrypt.
        builder.ConnectionStringBuilder.SslMode = SslMode.Require;

        X509Certificate2Collection? roots = null;
        if (!string.IsNullOrWhiteSpace(tls.ServerCaPem))
        {
            roots = [];
            roots.ImportFromPem(ReadPem(tls.ServerCaPem, "server_ca_pem"));
        }

        X509Certificate2? clientCert = null;
        if (!string.IsNullOrWhiteSpace(tls.CertPem) || !string.IsNullOrWhiteSpace(tls.KeyPem))
        {
            if (string.IsNullOrWhiteSpace(tls.CertPem) || string.IsNullOrWhiteSpace(tls.KeyPem))
            {
                throw new ConfigException("tls.cert_pem and tls.key_pem must be set together");
            }

            using var pemCert = X509Certificate2.CreateFromPem(ReadPem(tls.CertPem, "cert_pem"), ReadPem(tls.KeyPem, "key_pem"));
            // Round-trip through PKCS#12 so SslStream can use the private key on every platform.
            clientCert = X509CertificateLoader.LoadPkcs12(pemCert.Export(X509ContentType.Pkcs12), null);
        }

        var expectedHost = string.IsNullOrWhiteSpace(tls.ServerName) ? FirstHost(csb.Host) : tls.ServerName;
        var insecure = tls.InsecureSkipVerify;
        builder.UseSslClientAuthenticationOptionsCallback(o =>
        {
            if (clientCert is not null)
            {
                o.ClientCertificates = [clientCert];
            }

            o.RemoteCertificateValidationCallback = (_, certificate, handshake, errors) =>
                insecure || Validate(certificate, handshake, errors, roots, expectedHost);
        });
    }

    private static bool Validate(
        X509Certificate? certificate, X509Chain? handshake, SslPolicyErrors errors, X509Certificate2Collection? roots, string? expectedHost)
    {
        if (certificate is null)
        {
            return false;
        }

        var cert = certificate as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
        if (roots is null)
        {
            // System trust store: SslStream already checked the chain; we only override the name check.
            if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
            {
                return false;
            }
        }
        else
        {
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(roots);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            // The intermediates the server sent (like Go's crypto/tls, which verifies with them): a certificate issued
            // by an intermediate CA then verifies against a server_ca_pem that holds only the root.
            if (handshake is not null)
            {
                chain.ChainPolicy.ExtraStore.AddRange(handshake.ChainPolicy.ExtraStore);
                foreach (var element in handshake.ChainElements)
                {
                    chain.ChainPolicy.ExtraStore.Add(element.Certificate);
                }
            }
            if (!chain.Build(cert))
            {
                return false;
            }
        }

        return expectedHost is null || MatchesHost(cert, expectedHost);
    }

    private static bool MatchesHost(X509Certificate2 cert, string host)
    {
        if (IPAddress.TryParse(host, out var ip))
        {
            var san = cert.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault();
            return san is not null && san.EnumerateIPAddresses().Any(a => a.Equals(ip));
        }

        return cert.MatchesHostname(host, allowWildcards: true, allowCommonName: true);
    }

    private static string? FirstHost(string? hosts)
    {
        if (string.IsNullOrEmpty(hosts))
        {
            return null;
        }

        var first = hosts.Split(',')[0];
        if (first.StartsWith('['))
        {
            return first[1..first.IndexOf(']', StringComparison.Ordinal)];
        }

        var colon = first.LastIndexOf(':');
        return colon > 0 && first.IndexOf(':', StringComparison.Ordinal) == colon ? first[..colon] : first;
    }

    /// <summary>
    /// The PEM text of a setting. From the loader it already is PEM text (the loader read any file, once); options
    /// built in code may hold a path or base64, resolved here by <see cref="PemInput"/>.
    /// </summary>
    private static string ReadPem(string value, string setting) => PemInput.ReadText(value, setting)!;
}
