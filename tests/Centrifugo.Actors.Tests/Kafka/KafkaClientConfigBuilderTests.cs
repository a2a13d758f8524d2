using System.Text;
using Centrifugo.Actors.Configuration;
using Centrifugo.Actors.Kafka;
using Confluent.Kafka;

namespace Centrifugo.Actors.Tests.Kafka;

[Trait(TestLane.Category, TestLane.Fast)]
public sealed class KafkaClientConfigBuilderTests
{
    private const string Password = "s3cr3t-Pa55word";
    private const string CaPem = "-----BEGIN CERTIFICATE-----\nMIIBca\n-----END CERTIFICATE-----";
    private const string KeyPem = "-----BEGIN PRIVATE KEY-----\nMIIEkey\n-----END PRIVATE KEY-----";

    private static KafkaConsumerOptions Options() => new()
    {
        Brokers = ["b1:9092", "b2:9092"],
        Topics = ["events"],
        ConsumerGroup = "group-1",
    };

    [Fact]
    public void Consumer_config_commits_manually_under_the_consumer_group_and_maps_fetch_options()
    {
        var config = KafkaClientConfigBuilder.Consumer(Options() with
        {
            FetchMaxWait = TimeSpan.FromMilliseconds(250),
            FetchMaxBytes = 5_000_000,
            FetchReadUncommitted = true,
            DialTimeout = TimeSpan.FromSeconds(7),
        });

        Assert.Equal("b1:9092,b2:9092", config.BootstrapServers);
        Assert.Equal("group-1", config.GroupId);
        Assert.Equal("centrifugo-actors", config.ClientId);
        Assert.False(config.EnableAutoCommit);
        Assert.False(config.EnableAutoOffsetStore);
        Assert.Equal(AutoOffsetReset.Earliest, config.AutoOffsetReset);
        Assert.Equal(IsolationLevel.ReadUncommitted, config.IsolationLevel);
        Assert.Equal(250, config.FetchWaitMaxMs);
        Assert.Equal(5_000_000, config.FetchMaxBytes);
        Assert.Equal(7000, config.SocketConnectionSetupTimeoutMs);
        Assert.Equal(SecurityProtocol.Plaintext, config.SecurityProtocol);
        Assert.Null(config.SaslPassword);
    }

    [Fact]
    public void A_classic_member_sends_its_session_and_heartbeat_and_assigns_cooperative_sticky()
    {
        var options = Options() with { SessionTimeout = TimeSpan.FromSeconds(9), HeartbeatInterval = TimeSpan.FromSeconds(1) };

        var config = KafkaClientConfigBuilder.Member(options, KafkaSettings.From(options), podName: "");

        Assert.Equal(GroupProtocol.Classic, config.GroupProtocol);
        Assert.Equal(PartitionAssignmentStrategy.CooperativeSticky, config.PartitionAssignmentStrategy);
        Assert.Equal(9000, config.SessionTimeoutMs);
        Assert.Equal(1000, config.HeartbeatIntervalMs);
        Assert.Null(config.GroupInstanceId);
        Assert.Equal("group-1", config.GroupId);
    }

    [Fact]
    public void A_kip848_member_leaves_session_heartbeat_and_assignor_to_the_broker_and_builds()
    {
        var options = Options() with { GroupProtocol = KafkaGroupProtocol.Consumer };

        var config = KafkaClientConfigBuilder.Member(options, KafkaSettings.From(options), podName: "");

        Assert.Equal(GroupProtocol.Consumer, config.GroupProtocol);
        Assert.Null(config.SessionTimeoutMs);
        Assert.Null(config.HeartbeatIntervalMs);
        Assert.Null(config.PartitionAssignmentStrategy);
        // librdkafka refuses classic-only properties under group.protocol=consumer: building proves there are none.
        using var consumer = new ConsumerBuilder<byte[], byte[]>(config).Build();
    }

    [Theory]
    [InlineData("", "actors-0", null)]
    [InlineData("centrifugo", "actors-0", "centrifugo-actors-0")]
    [InlineData("centrifugo", "", "centrifugo")]
    public void Instance_id_turns_on_static_membership_named_after_the_pod(string instanceId, string pod, string? expected)
    {
        var options = Options() with { InstanceId = instanceId };

        var config = KafkaClientConfigBuilder.Member(options, KafkaSettings.From(options), pod);

        Assert.Equal(expected, config.GroupInstanceId);
    }

    [Fact]
    public void Defaults_read_committed_wait_500_ms_and_dial_3_s()
    {
        var config = KafkaClientConfigBuilder.Consumer(Options() with { FetchMaxWait = TimeSpan.Zero, DialTimeout = TimeSpan.Zero });

        Assert.Equal(IsolationLevel.ReadCommitted, config.IsolationLevel);
        Assert.Equal(500, config.FetchWaitMaxMs);
        Assert.Equal(3000, config.SocketConnectionSetupTimeoutMs);
        Assert.Null(config.FetchMaxBytes);
    }

    [Fact]
    public void A_small_fetch_max_bytes_still_builds_a_valid_librdkafka_consumer()
    {
        var config = KafkaClientConfigBuilder.Consumer(Options() with { FetchMaxBytes = 4096 });

        using var consumer = new ConsumerBuilder<byte[], byte[]>(config).SetLogHandler((_, _) => { }).Build();

        Assert.Equal(4096, config.MessageMaxBytes);
    }

    [Theory]
    [InlineData("plain", SaslMechanism.Plain)]
    [InlineData("scram-sha-256", SaslMechanism.ScramSha256)]
    [InlineData("SCRAM-SHA-512", SaslMechanism.ScramSha512)]
    public void Sasl_mechanisms_map_to_librdkafka_with_sasl_plaintext(string mechanism, SaslMechanism expected)
    {
        var config = KafkaClientConfigBuilder.Consumer(
            Options() with { SaslMechanism = mechanism, SaslUser = "alice", SaslPassword = Password });

        Assert.Equal(expected, config.SaslMechanism);
        Assert.Equal(SecurityProtocol.SaslPlaintext, config.SecurityProtocol);
        Assert.Equal("alice", config.SaslUsername);
        Assert.Equal(Password, config.SaslPassword);
    }

    [Fact]
    public void Unsupported_sasl_mechanism_is_rejected_without_revealing_the_password()
    {
        var e = Assert.Throws<InvalidOperationException>(() =>
            KafkaClientConfigBuilder.Consumer(
                Options() with { SaslMechanism = "aws-msk-iam", SaslUser = "AKIA", SaslPassword = Password }));

        Assert.Contains("aws-msk-iam", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(Password, e.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Tls_with_sasl_uses_sasl_ssl_and_takes_raw_base64_and_file_pem_values()
    {
        var certFile = Path.Combine(Path.GetTempPath(), $"cert-{Guid.NewGuid():N}.pem");
        File.WriteAllText(certFile, "-----BEGIN CERTIFICATE-----\nfile\n-----END CERTIFICATE-----");
        try
        {
            var config = KafkaClientConfigBuilder.Consumer(Options() with
            {
                SaslMechanism = "plain",
                SaslUser = "u",
                SaslPassword = Password,
                Tls = new TlsOptions
                {
                    Enabled = true,
                    ServerCaPem = CaPem,
                    CertPem = certFile,
                    KeyPem = Convert.ToBase64String(Encoding.UTF8.GetBytes(KeyPem)),
                    InsecureSkipVerify = true,
                },
            });

            Assert.Equal(SecurityProtocol.SaslSsl, config.SecurityProtocol);
            Assert.Equal(CaPem, config.SslCaPem);
            Assert.Null(config.SslCaLocation);
            Assert.Equal(certFile, config.SslCertificateLocation);
            Assert.Null(config.SslCertificatePem);
            Assert.Equal(KeyPem, config.SslKeyPem);
            Assert.False(config.EnableSslCertificateVerification);
            Assert.Equal(SslEndpointIdentificationAlgorithm.None, config.SslEndpointIdentificationAlgorithm);
        }
        finally
        {
            File.Delete(certFile);
        }
    }

    [Fact]
    public void Tls_alone_uses_ssl_and_verifies_certificates_by_default()
    {
        var config = KafkaClientConfigBuilder.DeadLetterProducer(Options() with { Tls = new TlsOptions { Enabled = true } });

        Assert.Equal(SecurityProtocol.Ssl, config.SecurityProtocol);
        Assert.Null(config.EnableSslCertificateVerification);
        Assert.True(config.EnableIdempotence);
        Assert.Equal(Acks.All, config.Acks);
        Assert.Equal("centrifugo-actors", config.ClientId);
    }

    [Fact]
    public void An_unreadable_tls_key_is_reported_by_field_name_not_by_value()
    {
        const string notAKey = "definitely-not-a-key-value";
        var e = Assert.Throws<ConfigException>(() =>
            KafkaClientConfigBuilder.Consumer(Options() with { Tls = new TlsOptions { Enabled = true, KeyPem = notAKey } }));

        Assert.Contains("key_pem", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(notAKey, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Description_for_logs_never_contains_the_password()
    {
        var text = KafkaClientConfigBuilder.Describe(Options() with { SaslMechanism = "plain", SaslUser = "u", SaslPassword = Password });

        Assert.DoesNotContain(Password, text, StringComparison.Ordinal);
        Assert.Contains("sasl=plain", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(-1, 1)]
    [InlineData(0, 1)]
    [InlineData(10, 10)]
    public void Partition_queue_max_size_follows_centrifugo(int configured, int queuedAtMost) =>
        Assert.Equal(queuedAtMost, KafkaConsumerHub.QueueLimit(configured));
}
