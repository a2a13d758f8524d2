using System.Globalization;
using Centrifugo.Actors.Configuration;
using Confluent.Kafka;

namespace Centrifugo.Actors.Kafka;

/// <summary>
/// Maps a Centrifugo <c>kafka</c> consumer config to librdkafka client configs: each node's group member
/// (<see cref="Member"/>) and the dead-letter producer. Error messages name the offending field, never its value (keys
/// and passwords are secrets).
/// </summary>
internal static class KafkaClientConfigBuilder
{
    public const string ClientId = "centrifugo-actors";

    /// <summary>The dead-letter producer's message.max.bytes: librdkafka's largest consumable response plus room for headers.</summary>
    public const int DeadLetterMessageMaxBytes = 100_000_000 + (1 << 20);

    public static ConsumerConfig Consumer(KafkaConsumerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = new ConsumerConfig
        {
            GroupId = options.ConsumerGroup,
            EnableAutoCommit = false,
            EnableAutoOffsetStore = false,
            AutoOffsetReset = AutoOffsetReset.Earliest,
            EnablePartitionEof = false,
            AllowAutoCreateTopics = false,
            IsolationLevel = options.FetchReadUncommitted ? IsolationLevel.ReadUncommitted : IsolationLevel.ReadCommitted,
            FetchWaitMaxMs = Milliseconds(options.FetchMaxWait, fallback: Defaults.FetchMaxWait, min: 0),
        };
        if (options.FetchMaxBytes > 0)
        {
            config.FetchMaxBytes = options.FetchMaxBytes;
            // librdkafka rejects fetch.max.bytes below message.max.bytes (default 1,000,000).
            if (options.FetchMaxBytes < 1_000_000)
            {
                config.MessageMaxBytes = Math.Max(1000, options.FetchMaxBytes);
            }
        }

        ApplyCommon(config, options);
        return config;
    }

    /// <summary>
    /// The config of a node's member of the consumer group: <see cref="Consumer"/> plus the group protocol and its
    /// timings, static membership when <c>instance_id</c> is set (group.instance.id "&lt;instance_id&gt;-&lt;pod name&gt;"),
    /// and a metadata refresh that assigns partitions added to a topic within <see cref="KafkaSettings.MetadataRefresh"/>.
    /// </summary>
    public static ConsumerConfig Member(KafkaConsumerOptions options, KafkaSettings settings, string podName)
    {
        var config = Consumer(options);
        config.TopicMetadataRefreshIntervalMs = (int)settings.MetadataRefresh.TotalMilliseconds;
        if (settings.GroupProtocol == KafkaGroupProtocol.Consumer)
        {
            // The session timeout, heartbeat interval and assignor are the broker's under KIP-848 (librdkafka refuses them).
            config.GroupProtocol = GroupProtocol.Consumer;
        }
        else
        {
            config.GroupProtocol = GroupProtocol.Classic;
            config.PartitionAssignmentStrategy = PartitionAssignmentStrategy.CooperativeSticky;
            config.SessionTimeoutMs = (int)settings.SessionTimeout.TotalMilliseconds;
            config.HeartbeatIntervalMs = (int)settings.HeartbeatInterval.TotalMilliseconds;
        }
        if (options.InstanceId.Length > 0)
        {
            config.GroupInstanceId = podName.Length > 0 ? $"{options.InstanceId}-{podName}" : options.InstanceId;
        }
        return config;
    }

    public static ProducerConfig DeadLetterProducer(KafkaConsumerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var config = new ProducerConfig
        {
            EnableIdempotence = true,
            Acks = Acks.All,
            // Lets "<topic>.dead_letter" appear without an admin step where the broker allows auto-creation;
            // elsewhere the topic must exist up front (documented).
            AllowAutoCreateTopics = true,
            // Any record the consumer can read (librdkafka's receive.message.max.bytes, 100,000,000 by default), with
            // the dead-letter headers on top, instead of librdkafka's default 1,000,000, which is below even Kafka's
            // default topic limit (1,048,588). What the dead-letter topic itself refuses becomes a reference
            // (KafkaDeadLetterProducer).
            MessageMaxBytes = DeadLetterMessageMaxBytes,
        };
        ApplyCommon(config, options);
        return config;
    }

    private static void ApplyCommon(ClientConfig config, KafkaConsumerOptions options)
    {
        config.BootstrapServers = string.Join(',', options.Brokers);
        config.ClientId = ClientId;
        config.SocketConnectionSetupTimeoutMs = Milliseconds(options.DialTimeout, fallback: Defaults.DialTimeout, min: 1000);

        var sasl = options.SaslMechanism.Trim().ToLowerInvariant() switch
        {
            "" => (SaslMechanism?)null,
            "plain" => SaslMechanism.Plain,
            "scram-sha-256" => SaslMechanism.ScramSha256,
            "scram-sha-512" => SaslMechanism.ScramSha512,
            _ => throw new InvalidOperationException(
                $"kafka sasl_mechanism '{options.SaslMechanism}' is not supported (use plain, scram-sha-256 or scram-sha-512)."),
        };
        if (sasl is not null)
        {
            config.SaslMechanism = sasl;
            config.SaslUsername = options.SaslUser;
            config.SaslPassword = options.SaslPassword;
        }

        var tls = options.Tls;
        config.SecurityProtocol = (sasl is not null, tls.Enabled) switch
        {
            (true, true) => SecurityProtocol.SaslSsl,
            (true, false) => SecurityProtocol.SaslPlaintext,
            (false, true) => SecurityProtocol.Ssl,
            _ => SecurityProtocol.Plaintext,
        };
        if (!tls.Enabled)
        {
            return;
        }

        // client_ca_pem verifies clients on a server; server_name has no librdkafka equivalent (it verifies and sends
        // SNI for the broker host names it connects to). Both are accepted and ignored.
        switch (ResolvePem(tls.ServerCaPem, "server_ca_pem"))
        {
            case (true, var path):
                config.SslCaLocation = path;
                break;
            case (false, { } pem):
                config.SslCaPem = pem;
                break;
        }

        switch (ResolvePem(tls.CertPem, "cert_pem"))
        {
            case (true, var path):
                config.SslCertificateLocation = path;
                break;
            case (false, { } pem):
                config.SslCertificatePem = pem;
                break;
        }

        switch (ResolvePem(tls.KeyPem, "key_pem"))
        {
            case (true, var path):
                config.SslKeyLocation = path;
                break;
            case (false, { } pem):
                config.SslKeyPem = pem;
                break;
        }

        if (tls.InsecureSkipVerify)
        {
            config.EnableSslCertificateVerification = false;
            config.SslEndpointIdentificationAlgorithm = SslEndpointIdentificationAlgorithm.None;
        }
    }

    /// <summary>
    /// A PEM field through <see cref="PemInput"/>: (true, path) for a file, (false, pem) for content, (false, null) when
    /// unset. From the loader it is always content (the loader read any file, once); a path only in options built in code.
    /// </summary>
    private static (bool IsPath, string? Value) ResolvePem(string? value, string field) =>
        PemInput.Resolve(value, field) is { } source ? (source.IsPath, source.Value) : (false, null);

    private static readonly KafkaConsumerOptions Defaults = new() { Brokers = [], Topics = [], ConsumerGroup = "" };

    private static int Milliseconds(TimeSpan value, TimeSpan fallback, int min)
    {
        var effective = value <= TimeSpan.Zero ? fallback : value;
        return (int)Math.Clamp(effective.TotalMilliseconds, min, int.MaxValue);
    }

    /// <summary>What a log line may say about the client config: never the password or key material.</summary>
    public static string Describe(KafkaConsumerOptions options) => string.Create(
        CultureInfo.InvariantCulture,
        $"brokers={string.Join(',', options.Brokers)} topics={string.Join(',', options.Topics)} group={options.ConsumerGroup} " +
        $"sasl={(options.SaslMechanism.Length == 0 ? "none" : options.SaslMechanism)} tls={options.Tls.Enabled}");
}
