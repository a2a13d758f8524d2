using System.Text.Encodings.Web;
using System.Text.Json;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// The effective config (defaults applied) in Centrifugo's key names, for `config print`-style diagnostics and
/// start-up logs. Secrets (API key, api.url userinfo, DSN passwords, SASL password, TLS private key) become "***"; an empty secret
/// stays "" so the output still shows it is unset.
/// </summary>
internal static class RedactedConfigWriter
{
    public const string Mask = "***";

    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Indented = true,
        // Human output: keep "µs" and "<" readable; the text is never embedded in HTML.
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public static string Write(NodeOptions options)
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, WriterOptions))
        {
            w.WriteStartObject();

            w.WriteStartObject("api");
            w.WriteString("url", RedactUrl(options.Api.Url));
            w.WriteString("key", Secret(options.Api.Key));
            w.WriteString("timeout", GoDuration.Format(options.Api.Timeout));
            w.WriteNumber("max_batch_size", options.Api.MaxBatchSize);
            w.WriteEndObject();

            w.WriteStartArray("consumers");
            foreach (var consumer in options.Consumers)
            {
                WriteConsumer(w, consumer);
            }

            w.WriteEndArray();

            var cluster = options.Cluster;
            w.WriteStartObject("cluster");
            w.WriteString("system_name", cluster.SystemName);
            w.WriteString("hostname", cluster.Hostname);
            w.WriteNumber("port", cluster.Port);
            w.WriteStartArray("seed_nodes");
            foreach (var seed in cluster.SeedNodes)
            {
                w.WriteStringValue(seed);
            }

            w.WriteEndArray();
            w.WriteNumber("number_of_shards", cluster.NumberOfShards);
            w.WriteString("heartbeat_interval", GoDuration.Format(cluster.HeartbeatInterval));
            w.WriteString("acceptable_heartbeat_pause", GoDuration.Format(cluster.AcceptableHeartbeatPause));
            w.WriteString("downing_stable_after", GoDuration.Format(cluster.DowningStableAfter));
            w.WriteString("rebalance_interval", GoDuration.Format(cluster.RebalanceInterval));
            w.WriteBoolean("postgres_liveness", cluster.PostgresLiveness);
            w.WriteString("pod_name", cluster.PodName);
            BootstrapConfig.Write(w, cluster);
            w.WriteEndObject();

            w.WriteStartObject("admin");
            w.WriteString("address", options.Admin.Address);
            w.WriteString("token", options.Admin.Token.Length > 0 ? "***" : "");
            w.WriteEndObject();
            LogConfig.Write(w, options.Log);

            w.WriteEndObject();
        }

        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }

    /// <summary>
    /// The only call into PostgresDsn.Redact. Whatever happens, the raw DSN is never returned.
    /// </summary>
    internal static string RedactDsn(string dsn)
    {
        if (dsn.Length == 0)
        {
            return "";
        }

        return PostgresDsn.Redact(dsn);
    }

    /// <summary>api.url with its userinfo password (or a userinfo without one: a token) masked (the loader refuses a query).</summary>
    internal static string RedactUrl(string url)
    {
        var scheme = url.IndexOf("://", StringComparison.Ordinal);
        var start = scheme < 0 ? 0 : scheme + 3;
        var end = url.IndexOfAny(['/', '?', '#'], start);
        var authority = end < 0 ? url[start..] : url[start..end];
        var at = authority.LastIndexOf('@');
        if (at < 0)
        {
            return url;
        }
        var colon = authority.IndexOf(':', StringComparison.Ordinal);
        var user = colon >= 0 && colon < at ? authority[..(colon + 1)] : "";
        return url[..start] + user + Mask + authority[at..] + (end < 0 ? "" : url[end..]);
    }

    private static string Secret(string? value) => string.IsNullOrEmpty(value) ? "" : Mask;

    private static void WriteConsumer(Utf8JsonWriter w, ConsumerOptions consumer)
    {
        w.WriteStartObject();
        w.WriteString("name", consumer.Name);
        w.WriteBoolean("enabled", consumer.Enabled);
        switch (consumer)
        {
            case PostgresConsumer { Postgresql: var pg }:
                w.WriteString("type", "postgresql");
                w.WriteStartObject("postgresql");
                w.WriteString("dsn", RedactDsn(pg.Dsn));
                w.WriteString("outbox_table_name", pg.OutboxTableName);
                w.WriteNumber("num_partitions", pg.NumPartitions);
                w.WriteNumber("partition_select_limit", pg.PartitionSelectLimit);
                w.WriteNumber("partition_select_max_bytes", pg.PartitionSelectMaxBytes);
                w.WriteNumber("payload_max_bytes", pg.PayloadMaxBytes);
                w.WriteString("partition_poll_interval", GoDuration.Format(pg.PartitionPollInterval));
                w.WriteString("partition_notification_channel", pg.PartitionNotificationChannel);
                w.WriteString("partition_notification_dsn", RedactDsn(pg.PartitionNotificationDsn));
                WriteTls(w, pg.Tls);
                w.WriteBoolean("use_try_lock", pg.UseTryLock);
                w.WriteString("dead_letter_table_name", pg.DeadLetterTableName);
                w.WriteBoolean("derive_idempotency_key", pg.DeriveIdempotencyKey);
                w.WriteBoolean("centrifugo_compatible_lock", pg.CentrifugoCompatibleLock);
                w.WriteEndObject();
                break;
            case KafkaConsumer { Kafka: var k }:
                w.WriteString("type", "kafka");
                w.WriteStartObject("kafka");
                w.WriteStartArray("brokers");
                foreach (var broker in k.Brokers)
                {
                    w.WriteStringValue(broker);
                }

                w.WriteEndArray();
                w.WriteStartArray("topics");
                foreach (var topic in k.Topics)
                {
                    w.WriteStringValue(topic);
                }

                w.WriteEndArray();
                w.WriteString("consumer_group", k.ConsumerGroup);
                w.WriteNumber("max_poll_records", k.MaxPollRecords);
                w.WriteNumber("fetch_max_bytes", k.FetchMaxBytes);
                w.WriteString("fetch_max_wait", GoDuration.Format(k.FetchMaxWait));
                w.WriteBoolean("fetch_read_uncommitted", k.FetchReadUncommitted);
                // Effective 0 (fetch only while nothing is queued) is written -1 so the printed config loads back the same: 0 means the
                // default.
                w.WriteNumber("partition_queue_max_size", k.PartitionQueueMaxSize == 0 ? -1 : k.PartitionQueueMaxSize);
                w.WriteNumber("partition_queue_max_bytes", k.PartitionQueueMaxBytes);
                w.WriteString("dial_timeout", GoDuration.Format(k.DialTimeout));
                WriteTls(w, k.Tls);
                w.WriteString("sasl_mechanism", k.SaslMechanism);
                w.WriteString("sasl_user", k.SaslUser);
                w.WriteString("sasl_password", Secret(k.SaslPassword));
                w.WriteString("instance_id", k.InstanceId);
                w.WriteString("group_protocol", k.GroupProtocol == KafkaGroupProtocol.Consumer ? "consumer" : "classic");
                w.WriteString("session_timeout", GoDuration.Format(k.SessionTimeout));
                w.WriteString("heartbeat_interval", GoDuration.Format(k.HeartbeatInterval));
                w.WriteString("method_header", k.MethodHeader);
                var pdm = k.PublicationDataMode;
                w.WriteStartObject("publication_data_mode");
                w.WriteBoolean("enabled", pdm.Enabled);
                w.WriteString("channels_header", pdm.ChannelsHeader);
                w.WriteString("idempotency_key_header", pdm.IdempotencyKeyHeader);
                w.WriteString("delta_header", pdm.DeltaHeader);
                w.WriteString("version_header", pdm.VersionHeader);
                w.WriteString("version_epoch_header", pdm.VersionEpochHeader);
                w.WriteString("tags_header_prefix", pdm.TagsHeaderPrefix);
                w.WriteEndObject();
                w.WriteString("dead_letter_topic", k.DeadLetterTopic);
                w.WriteBoolean("derive_idempotency_key", k.DeriveIdempotencyKey);
                w.WriteEndObject();
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(consumer), consumer.GetType().Name, "a consumer type without a writer");
        }

        w.WriteEndObject();
    }

    private static void WriteTls(Utf8JsonWriter w, TlsOptions tls)
    {
        w.WriteStartObject("tls");
        w.WriteBoolean("enabled", tls.Enabled);
        w.WriteString("cert_pem", tls.CertPem ?? "");
        w.WriteString("key_pem", Secret(tls.KeyPem));
        w.WriteString("server_ca_pem", tls.ServerCaPem ?? "");
        w.WriteString("client_ca_pem", tls.ClientCaPem ?? "");
        w.WriteBoolean("insecure_skip_verify", tls.InsecureSkipVerify);
        w.WriteString("server_name", tls.ServerName ?? "");
        w.WriteEndObject();
    }
}
