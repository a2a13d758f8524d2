using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Centrifugo.Actors.Outbox;
using Microsoft.Extensions.Logging.Abstractions;

namespace Centrifugo.Actors.Tests.Configuration;

/// <summary>TLS PEM inputs are read once, by PemInput, and checked at load for every enabled consumer.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class TlsConfigTests
{
    private const string Pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";

    [Fact]
    public void Raw_pem_base64_pem_and_a_file_path_are_recognised()
    {
        var file = Path.Combine(Path.GetTempPath(), $"tls-{Guid.NewGuid():N}.pem");
        File.WriteAllText(file, Pem);
        try
        {
            Assert.Equal(new PemSource(false, Pem), PemInput.Resolve("  " + Pem + "\n", "cert_pem"));
            Assert.Equal(new PemSource(false, Pem), PemInput.Resolve(Convert.ToBase64String(Encoding.UTF8.GetBytes(Pem)), "cert_pem"));
            var fromFile = PemInput.Resolve(file, "cert_pem");
            Assert.Equal(new PemSource(true, file), fromFile);
            Assert.Equal(Pem, fromFile!.Value.ReadText());
            Assert.Null(PemInput.Resolve("  ", "cert_pem"));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData("not-a-key-value")]
    [InlineData("/nonexistent/key.pem")]
    [InlineData("aGVsbG8gd29ybGQ=")] // base64, but not of PEM
    public void Anything_else_is_a_config_error_naming_the_field_not_the_value(string value)
    {
        var e = Assert.Throws<ConfigException>(() => PemInput.Resolve(value, "key_pem"));

        Assert.Equal("tls.key_pem is neither PEM, base64-encoded PEM nor an existing file path", e.Message);
    }

    [Fact]
    public void A_bad_postgresql_tls_value_fails_the_load_with_consumer_and_field()
    {
        var message = Cfg.Error(
            Cfg.Config(Cfg.Pg(block: ""","tls":{"enabled":true,"cert_pem":"/nonexistent/c.pem","key_pem":"tls-S3cret-key"}""")));

        Assert.Equal(
            "in consumer pg_main (postgresql): tls.cert_pem is neither PEM, base64-encoded PEM nor an existing file path", message);
    }

    [Fact]
    public void A_bad_kafka_tls_key_fails_the_load_without_echoing_it()
    {
        var message = Cfg.Error(Cfg.Config(Cfg.Kafka(block: ""","tls":{"enabled":true,"key_pem":"tls-S3cret-key"}""")));

        Assert.Equal("in consumer kf_main (kafka): tls.key_pem is neither PEM, base64-encoded PEM nor an existing file path", message);
    }

    [Fact]
    public void A_postgresql_client_certificate_needs_its_key()
    {
        var message = Cfg.Error(Cfg.Config(
            Cfg.Pg(block: $$$""","tls":{"enabled":true,"cert_pem":"{{{Pem.Replace("\n", "\\n", StringComparison.Ordinal)}}}"}""")));

        Assert.Equal("in consumer pg_main (postgresql): tls.cert_pem and tls.key_pem must be set together", message);
    }

    /// <summary>A CA file, a client certificate file and its key file; deleted by the test once the config is loaded.</summary>
    private static (string Ca, string Cert, string Key, string CaPem, string CertPem, string KeyPem) PemFiles()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=pem-once", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        var certPem = cert.ExportCertificatePem();
        var keyPem = key.ExportPkcs8PrivateKeyPem();
        var dir = Path.Combine(Path.GetTempPath(), $"pem-once-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        var (ca, certPath, keyPath) = (Path.Combine(dir, "ca.pem"), Path.Combine(dir, "client.pem"), Path.Combine(dir, "client.key"));
        File.WriteAllText(ca, certPem);
        File.WriteAllText(certPath, certPem);
        File.WriteAllText(keyPath, keyPem);
        return (ca, certPath, keyPath, certPem, certPem, keyPem);
    }

    private static string TlsBlock(string ca, string cert, string key) =>
        $$$""","tls":{"enabled":true,"server_ca_pem":"{{{ca}}}","cert_pem":"{{{cert}}}","key_pem":"{{{key}}}"}""";

    [Fact]
    public void Postgresql_pem_files_are_read_once_at_load_and_the_client_reads_no_file()
    {
        var files = PemFiles();
        var pg = Cfg.One<PostgresConsumer>(Cfg.Config(Cfg.Pg(block: TlsBlock(files.Ca, files.Cert, files.Key)))).Postgresql;
        Directory.Delete(Path.GetDirectoryName(files.Ca)!, recursive: true);

        Assert.Equal((files.CaPem.Trim(), files.CertPem.Trim(), files.KeyPem.Trim()), (pg.Tls.ServerCaPem, pg.Tls.CertPem, pg.Tls.KeyPem));
        // Before, the data source read the files again here (and failed: they are gone).
        using var dataSource = PostgresDataSources.Create(pg.Dsn, pg.Tls, pooling: false, NullLoggerFactory.Instance);
    }

    [Fact]
    public void Kafka_pem_files_are_read_once_at_load_and_librdkafka_gets_their_text_not_their_paths()
    {
        var files = PemFiles();
        var kafka = Cfg.One<KafkaConsumer>(Cfg.Config(Cfg.Kafka(block: TlsBlock(files.Ca, files.Cert, files.Key)))).Kafka;
        Directory.Delete(Path.GetDirectoryName(files.Ca)!, recursive: true);

        var config = KafkaClientConfigBuilder.Consumer(kafka);

        Assert.Equal(
            (files.CaPem.Trim(), files.CertPem.Trim(), files.KeyPem.Trim()), (config.SslCaPem, config.SslCertificatePem, config.SslKeyPem));
        Assert.Equal((null, null, null), (config.SslCaLocation, config.SslCertificateLocation, config.SslKeyLocation));
    }

    [Fact]
    public void Tls_values_are_not_read_while_tls_is_disabled() =>
        Assert.False(Cfg.One<PostgresConsumer>(
            Cfg.Config(Cfg.Pg(block: ""","tls":{"enabled":false,"cert_pem":"later.pem","key_pem":"later.key"}"""))).Postgresql.Tls.Enabled);
}
