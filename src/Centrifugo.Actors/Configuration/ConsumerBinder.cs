using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// The <c>consumers</c> list: Centrifugo v5.2 and v6 shapes, env overrides, Centrifugo's defaults and zero-rules,
/// validation. Like Centrifugo, type-specific validation (required fields, ranges, DSN) runs only for enabled
/// consumers; disabled ones are still checked for unknown keys and JSON types.
/// </summary>
internal static partial class ConsumerBinder
{
    private const int MaxPartitions = 100_000;
    private const int MaxSelectLimit = 100_000;
    // 1 GiB: PostgreSQL's own limit for one field value.
    private const int MaxReadBytes = 1 << 30;
    private const int MaxIdentifierLength = 63;

    private static readonly IReadOnlyList<FieldSpec> ConsumerLevel =
        ConfigSchema.Consumer.Select(f => f.Kind == FieldKind.Object ? f with { Kind = FieldKind.Any } : f).ToList();

    public static IReadOnlyList<ConsumerOptions> Bind(JsonNode? fileConsumers, EnvOverrides env)
    {
        var list = env.ConsumersReplacement() ?? fileConsumers switch
        {
            null => [],
            JsonArray array => (JsonArray)array.DeepClone(),
            _ => throw new ConfigException($"consumers: expected an array, got {JsonFields.Describe(fileConsumers)}"),
        };

        var entries = new List<(JsonObject Consumer, string Name)>();
        var indexByName = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var i = 0; i < list.Count; i++)
        {
            if (list[i] is not JsonObject consumer)
            {
                throw new ConfigException($"consumers[{i}]: expected an object, got {JsonFields.Describe(list[i])}");
            }

            var fail = Failer(consumer, i);
            CheckShape(consumer, fail);
            var name = JsonFields.String(consumer, "name");
            if (string.IsNullOrEmpty(name))
            {
                throw fail("name is required");
            }

            if (!ConsumerName().IsMatch(name))
            {
                throw fail($"name \"{name}\" is invalid: it must match {ConsumerName()}");
            }

            if (!indexByName.TryAdd(name, i))
            {
                throw new ConfigException(
                    $"duplicate consumer name \"{name}\" (consumers[{indexByName[name]}] and consumers[{i}]); names must be unique");
            }

            entries.Add((consumer, name));
        }

        var v6Names = entries.SelectMany(e => EnvOverrides.ConsumerNames(e.Name)).ToHashSet(StringComparer.Ordinal);
        var result = new List<ConsumerOptions>();
        for (var i = 0; i < entries.Count; i++)
        {
            var (consumer, name) = entries[i];
            env.ApplyToConsumer(consumer, name, v6Names);
            if (BindOne(consumer, name, Failer(consumer, i)) is { } options)
            {
                result.Add(options);
            }
        }

        RefuseSharedKafkaGroupTopics(result);
        return result;
    }

    /// <summary>
    /// Two enabled kafka consumers reading one topic in one consumer group would both own its partitions (two entities
    /// per partition: every record delivered twice, offsets committed by both). One consumer is one group member, as
    /// in Centrifugo, so this is refused instead of guessed at.
    /// </summary>
    private static void RefuseSharedKafkaGroupTopics(IReadOnlyList<ConsumerOptions> consumers)
    {
        var kafka = consumers.OfType<KafkaConsumer>().Where(c => c.Enabled).ToList();
        for (var a = 0; a < kafka.Count; a++)
        {
            for (var b = a + 1; b < kafka.Count; b++)
            {
                var first = kafka[a].Kafka;
                var second = kafka[b].Kafka;
                if (!string.Equals(first.ConsumerGroup, second.ConsumerGroup, StringComparison.Ordinal))
                {
                    continue;
                }

                var shared = first.Topics.Intersect(second.Topics, StringComparer.Ordinal).ToList();
                if (shared.Count > 0)
                {
                    throw new ConfigException(
                        $"consumers {kafka[a].Name} and {kafka[b].Name} both read topic{(shared.Count > 1 ? "s" : "")} " +
                        $"{string.Join(", ", shared.Select(t => $"\"{t}\""))} in consumer_group \"{first.ConsumerGroup}\": every record " +
                        "would be delivered by both and their offset commits would overwrite each other; merge them into one " +
                        "consumer, or give each its own consumer_group (also when they point at different Kafka clusters)");
                }
            }
        }
    }

    /// <summary>
    /// Checks a DSN parses (the only call into PostgresDsn for validation). FormatException messages from PostgresDsn never contain the
    /// password (its contract).
    /// </summary>
    internal static void ValidateDsn(string dsn, string field, Func<string, ConfigException> fail)
    {
        try
        {
            _ = PostgresDsn.ToNpgsqlConnectionString(dsn);
        }
        catch (FormatException ex)
        {
            throw fail($"{field} is not a valid PostgreSQL DSN: {ex.Message}");
        }
        catch (ArgumentException)
        {
            throw fail(
                $"{field} is not a valid PostgreSQL DSN (use postgres://user:password@host:5432/db or host=… user=… key/value form)");
        }
    }

    private static Func<string, ConfigException> Failer(JsonObject consumer, int index)
    {
        var name = JsonFields.String(consumer, "name");
        var type = JsonFields.String(consumer, "type");
        var label = string.IsNullOrEmpty(name) ? $"consumers[{index}]"
            : string.IsNullOrEmpty(type) ? $"consumer {name}"
            : $"consumer {name} ({type})";
        return m => new ConfigException($"in {label}: {m}");
    }

    private static void CheckShape(JsonObject consumer, Func<string, ConfigException> fail)
    {
        foreach (var (block, fields) in new[] { ("postgresql", ConfigSchema.Postgresql), ("kafka", ConfigSchema.Kafka) })
        {
            var node = consumer[block];
            if (node is null)
            {
                continue;
            }

            if (node is not JsonObject obj)
            {
                throw fail($"{block}: expected an object, got {JsonFields.Describe(node)}");
            }

            if (block == "kafka")
            {
                KafkaLegacyTls.Normalize(obj, fail);
            }

            JsonFields.Check(obj, fields, "", $" in {block}", fail);
        }

        JsonFields.Check(consumer, ConsumerLevel, "", "", fail);
    }

    private static ConsumerOptions? BindOne(JsonObject consumer, string name, Func<string, ConfigException> fail)
    {
        var enabled = JsonFields.Bool(consumer, "enabled") ?? !(JsonFields.Bool(consumer, "disabled") ?? false);
        var type = JsonFields.String(consumer, "type") ?? "";
        if (type.Length == 0)
        {
            throw fail($"type is required (postgresql or kafka; env {EnvOverrides.ConsumerPrefix(name)}TYPE)");
        }

        if (ConfigSchema.UnsupportedTypes.Contains(type))
        {
            return enabled
                ? throw fail($"type \"{type}\" is a Centrifugo consumer type that Centrifugo.Actors does not run " +
                    "(only postgresql and kafka); disable this consumer (\"enabled\": false) or remove it")
                : null;
        }

        return type switch
        {
            "postgresql" => new PostgresConsumer
            {
                Name = name,
                Enabled = enabled,
                Postgresql = BindPostgresql(JsonFields.Object(consumer, "postgresql"), name, enabled, fail),
            },
            "kafka" => new KafkaConsumer
            {
                Name = name,
                Enabled = enabled,
                Kafka = BindKafka(JsonFields.Object(consumer, "kafka"), name, enabled, fail),
            },
            _ => throw fail(
                $"unknown type \"{type}\"{JsonFields.Suggest(type, ["postgresql", "kafka", .. ConfigSchema.UnsupportedTypes])} " +
                $"(Centrifugo types: postgresql, kafka, {string.Join(", ", ConfigSchema.UnsupportedTypes)})"),
        };
    }

    private static PostgresConsumerOptions BindPostgresql(JsonObject? pg, string name, bool validate, Func<string, ConfigException> fail)
    {
        var pgDefaults = PostgresConsumerOptions.Defaults;
        var dsn = JsonFields.String(pg, "dsn") ?? "";
        var table = JsonFields.String(pg, "outbox_table_name") ?? "";
        var numPartitions = JsonFields.Int(pg, "num_partitions") ?? 0;
        var selectLimit = JsonFields.Int(pg, "partition_select_limit") ?? 0;
        var selectMaxBytes = JsonFields.Int(pg, "partition_select_max_bytes") ?? 0;
        var payloadMaxBytes = JsonFields.Int(pg, "payload_max_bytes") ?? 0;
        var pollInterval = JsonFields.Duration(pg, "partition_poll_interval", fail) ?? TimeSpan.Zero;
        var channel = JsonFields.String(pg, "partition_notification_channel") ?? "";
        var notificationDsn = JsonFields.String(pg, "partition_notification_dsn") ?? "";
        var deadLetter = JsonFields.String(pg, "dead_letter_table_name") ?? "";
        var deadLetterIsDefault = deadLetter.Length == 0;
        if (deadLetterIsDefault && table.Length > 0)
        {
            // Appending to the whole name keeps a schema qualifier: app.outbox -> app.outbox_dead_letter.
            deadLetter = table + "_dead_letter";
        }

        if (validate)
        {
            if (dsn.Length == 0)
            {
                throw fail($"dsn is required (postgresql.dsn in the file or env {EnvOverrides.ConsumerPrefix(name)}POSTGRESQL_DSN)");
            }

            ValidateDsn(dsn, "dsn", fail);
            if (table.Length == 0)
            {
                throw fail("outbox_table_name is required");
            }

            ValidateTableName(table, "outbox_table_name", fail);
            if (numPartitions < 0 || numPartitions > MaxPartitions)
            {
                throw fail($"num_partitions must be between 1 and {MaxPartitions} (0 means 1), got {numPartitions}");
            }

            if (selectLimit < 0 || selectLimit > MaxSelectLimit)
            {
                throw fail($"partition_select_limit must be between 1 and {MaxSelectLimit} (0 means 100), got {selectLimit}");
            }

            if (selectMaxBytes < 0 || selectMaxBytes > MaxReadBytes)
            {
                throw fail($"partition_select_max_bytes must be between 1 and {MaxReadBytes} bytes " +
                    $"(0 means {pgDefaults.PartitionSelectMaxBytes}), got {selectMaxBytes}");
            }

            if (payloadMaxBytes < 0 || payloadMaxBytes > MaxReadBytes)
            {
                throw fail($"payload_max_bytes must be between 1 and {MaxReadBytes} bytes (0 means {pgDefaults.PayloadMaxBytes}), " +
                    $"got {payloadMaxBytes}");
            }

            if (pollInterval < TimeSpan.Zero)
            {
                throw fail($"partition_poll_interval must not be negative, got {GoDuration.Format(pollInterval)}");
            }

            if (channel.Length > MaxIdentifierLength)
            {
                throw fail($"partition_notification_channel must be at most {MaxIdentifierLength} characters (a PostgreSQL identifier)");
            }

            if (notificationDsn.Length > 0)
            {
                ValidateDsn(notificationDsn, "partition_notification_dsn", fail);
            }

            if (deadLetterIsDefault && deadLetter.Split('.')[^1].Length > MaxIdentifierLength)
            {
                throw fail($"the default dead_letter_table_name \"{deadLetter}\" is longer than {MaxIdentifierLength} characters; " +
                    "set dead_letter_table_name explicitly");
            }

            ValidateTableName(deadLetter, "dead_letter_table_name", fail);
            if (string.Equals(deadLetter, table, StringComparison.OrdinalIgnoreCase))
            {
                throw fail("dead_letter_table_name must differ from outbox_table_name");
            }
        }

        return new PostgresConsumerOptions
        {
            Dsn = dsn,
            OutboxTableName = table,
            NumPartitions = numPartitions == 0 ? pgDefaults.NumPartitions : numPartitions,
            PartitionSelectLimit = selectLimit == 0 ? pgDefaults.PartitionSelectLimit : selectLimit,
            PartitionSelectMaxBytes = selectMaxBytes == 0 ? pgDefaults.PartitionSelectMaxBytes : selectMaxBytes,
            PayloadMaxBytes = payloadMaxBytes == 0 ? pgDefaults.PayloadMaxBytes : payloadMaxBytes,
            PartitionPollInterval = pollInterval == TimeSpan.Zero ? pgDefaults.PartitionPollInterval : pollInterval,
            PartitionNotificationChannel = channel,
            PartitionNotificationDsn = notificationDsn,
            Tls = BindTls(JsonFields.Object(pg, "tls"), validate, fail, certAndKeyTogether: true),
            UseTryLock = JsonFields.Bool(pg, "use_try_lock") ?? false,
            DeadLetterTableName = deadLetter,
            DeriveIdempotencyKey = JsonFields.Bool(pg, "derive_idempotency_key") ?? false,
            CentrifugoCompatibleLock = JsonFields.Bool(pg, "centrifugo_compatible_lock") ?? false,
        };
    }

    private static KafkaConsumerOptions BindKafka(JsonObject? kafka, string name, bool validate, Func<string, ConfigException> fail)
    {
        var kafkaDefaults = KafkaConsumerOptions.Defaults;
        var brokers = JsonFields.StringList(kafka, "brokers") ?? [];
        var topics = JsonFields.StringList(kafka, "topics") ?? [];
        var group = JsonFields.String(kafka, "consumer_group") ?? "";
        var maxPollRecords = JsonFields.Int(kafka, "max_poll_records") ?? 0;
        var fetchMaxBytes = JsonFields.Int(kafka, "fetch_max_bytes") ?? 0;
        var fetchMaxWait = JsonFields.Duration(kafka, "fetch_max_wait", fail) ?? TimeSpan.Zero;
        var queueMaxSize = JsonFields.Int(kafka, "partition_queue_max_size") ?? 0;
        var queueMaxBytes = JsonFields.Int(kafka, "partition_queue_max_bytes") ?? 0;
        var dialTimeout = JsonFields.Duration(kafka, "dial_timeout", fail) ?? TimeSpan.Zero;
        var sasl = JsonFields.String(kafka, "sasl_mechanism") ?? "";
        var saslUser = JsonFields.String(kafka, "sasl_user") ?? "";
        var deadLetterTopic = JsonFields.String(kafka, "dead_letter_topic") ?? "";
        var groupProtocol = (JsonFields.String(kafka, "group_protocol") ?? "").Trim().ToLowerInvariant();
        var sessionTimeout = JsonFields.Duration(kafka, "session_timeout", fail) ?? TimeSpan.Zero;
        var heartbeatInterval = JsonFields.Duration(kafka, "heartbeat_interval", fail) ?? TimeSpan.Zero;
        var prefix = EnvOverrides.ConsumerPrefix(name);

        if (validate)
        {
            if (brokers.Count == 0)
            {
                throw fail($"brokers is required (kafka.brokers in the file or env {prefix}KAFKA_BROKERS, space-separated)");
            }

            for (var i = 0; i < brokers.Count; i++)
            {
                if (string.IsNullOrWhiteSpace(brokers[i]))
                {
                    throw fail($"brokers[{i}] is empty");
                }
            }

            if (topics.Count == 0)
            {
                throw fail("topics is required");
            }

            foreach (var topic in topics)
            {
                ValidateTopic(topic, "topics", fail);
            }

            if (group.Length == 0)
            {
                throw fail("consumer_group is required");
            }

            if (maxPollRecords < 0)
            {
                throw fail($"max_poll_records must not be negative (0 means 100), got {maxPollRecords}");
            }

            if (fetchMaxBytes < 0)
            {
                throw fail($"fetch_max_bytes must not be negative (0 means the client default), got {fetchMaxBytes}");
            }

            if (fetchMaxWait < TimeSpan.Zero)
            {
                throw fail($"fetch_max_wait must not be negative, got {GoDuration.Format(fetchMaxWait)}");
            }

            var effectiveSession = sessionTimeout > TimeSpan.Zero ? sessionTimeout : kafkaDefaults.SessionTimeout;
            var effectiveHeartbeat = heartbeatInterval > TimeSpan.Zero ? heartbeatInterval : kafkaDefaults.HeartbeatInterval;
            if (effectiveHeartbeat * 3 > effectiveSession)
            {
                throw fail($"heartbeat_interval ({GoDuration.Format(effectiveHeartbeat)}) " +
                    $"must be at most a third of session_timeout ({GoDuration.Format(effectiveSession)})");
            }

            if (queueMaxSize < -1)
            {
                throw fail("partition_queue_max_size must be -1 (fetch only while nothing is queued), 0 (default) or positive, " +
                    $"got {queueMaxSize}");
            }

            if (queueMaxBytes < 0)
            {
                throw fail($"partition_queue_max_bytes must be 0 (default 4 MiB) or positive, got {queueMaxBytes}");
            }

            const string NoAwsMskIam = "not supported by Centrifugo.Actors (librdkafka has no aws-msk-iam)";
            switch (sasl)
            {
                case "":
                    break;
                case "plain" or "scram-sha-256" or "scram-sha-512":
                    if (saslUser.Length == 0)
                    {
                        throw fail($"sasl_user is required when sasl_mechanism is \"{sasl}\"");
                    }

                    break;
                case "aws-msk-iam":
                    throw fail($"sasl_mechanism \"aws-msk-iam\" is {NoAwsMskIam}");
                default:
                    throw fail($"sasl_mechanism \"{sasl}\" is unknown (use plain, scram-sha-256 or scram-sha-512)");
            }

            if ((JsonFields.String(kafka, "assume_role_arn") ?? "").Length > 0)
            {
                throw fail($"assume_role_arn is {NoAwsMskIam}");
            }

            if (deadLetterTopic.Length > 0)
            {
                ValidateTopic(deadLetterTopic, "dead_letter_topic", fail);
                if (topics.Contains(deadLetterTopic))
                {
                    throw fail($"dead_letter_topic \"{deadLetterTopic}\" must not be one of the consumed topics");
                }
            }
        }

        var pdm = JsonFields.Object(kafka, "publication_data_mode");
        var pdmDefaults = new PublicationDataModeOptions();
        return new KafkaConsumerOptions
        {
            Brokers = brokers,
            Topics = topics,
            ConsumerGroup = group,
            MaxPollRecords = maxPollRecords == 0 ? kafkaDefaults.MaxPollRecords : maxPollRecords,
            FetchMaxBytes = fetchMaxBytes,
            FetchMaxWait = fetchMaxWait == TimeSpan.Zero ? kafkaDefaults.FetchMaxWait : fetchMaxWait,
            FetchReadUncommitted = JsonFields.Bool(kafka, "fetch_read_uncommitted") ?? false,
            PartitionQueueMaxSize = queueMaxSize switch
            {
                -1 => 0,
                0 => kafkaDefaults.PartitionQueueMaxSize,
                _ => queueMaxSize,
            },
            PartitionQueueMaxBytes = queueMaxBytes == 0 ? kafkaDefaults.PartitionQueueMaxBytes : queueMaxBytes,
            DialTimeout = dialTimeout <= TimeSpan.Zero ? kafkaDefaults.DialTimeout : dialTimeout,
            Tls = BindTls(JsonFields.Object(kafka, "tls"), validate, fail, certAndKeyTogether: false),
            SaslMechanism = sasl,
            SaslUser = saslUser,
            SaslPassword = JsonFields.String(kafka, "sasl_password") ?? "",
            InstanceId = JsonFields.String(kafka, "instance_id") ?? "",
            GroupProtocol = groupProtocol switch
            {
                "" or "classic" => KafkaGroupProtocol.Classic,
                "consumer" => KafkaGroupProtocol.Consumer,
                _ when !validate => KafkaGroupProtocol.Classic,
                _ => throw fail($"group_protocol must be classic or consumer, got \"{groupProtocol}\""),
            },
            SessionTimeout = sessionTimeout <= TimeSpan.Zero ? kafkaDefaults.SessionTimeout : sessionTimeout,
            HeartbeatInterval = heartbeatInterval <= TimeSpan.Zero ? kafkaDefaults.HeartbeatInterval : heartbeatInterval,
            // Centrifugo's env pass re-applies `default` tags to zero values, so "" snaps back to the default.
            MethodHeader = OrDefault(JsonFields.String(kafka, "method_header"), kafkaDefaults.MethodHeader),
            PublicationDataMode = new PublicationDataModeOptions
            {
                Enabled = JsonFields.Bool(pdm, "enabled") ?? false,
                ChannelsHeader = OrDefault(JsonFields.String(pdm, "channels_header"), pdmDefaults.ChannelsHeader),
                IdempotencyKeyHeader = OrDefault(JsonFields.String(pdm, "idempotency_key_header"), pdmDefaults.IdempotencyKeyHeader),
                DeltaHeader = OrDefault(JsonFields.String(pdm, "delta_header"), pdmDefaults.DeltaHeader),
                VersionHeader = OrDefault(JsonFields.String(pdm, "version_header"), pdmDefaults.VersionHeader),
                VersionEpochHeader = OrDefault(JsonFields.String(pdm, "version_epoch_header"), pdmDefaults.VersionEpochHeader),
                TagsHeaderPrefix = OrDefault(JsonFields.String(pdm, "tags_header_prefix"), pdmDefaults.TagsHeaderPrefix),
            },
            DeadLetterTopic = deadLetterTopic,
            DeriveIdempotencyKey = JsonFields.Bool(kafka, "derive_idempotency_key") ?? false,
        };
    }

    private static TlsOptions BindTls(JsonObject? tls, bool validate, Func<string, ConfigException> fail, bool certAndKeyTogether)
    {
        var options = new TlsOptions
        {
            Enabled = JsonFields.Bool(tls, "enabled") ?? false,
            CertPem = NullIfEmpty(JsonFields.String(tls, "cert_pem")),
            KeyPem = NullIfEmpty(JsonFields.String(tls, "key_pem")),
            ServerCaPem = NullIfEmpty(JsonFields.String(tls, "server_ca_pem")),
            ClientCaPem = NullIfEmpty(JsonFields.String(tls, "client_ca_pem")),
            InsecureSkipVerify = JsonFields.Bool(tls, "insecure_skip_verify") ?? false,
            ServerName = NullIfEmpty(JsonFields.String(tls, "server_name")),
        };
        if (validate && options.Enabled)
        {
            // Resolved once, here: a file is read now and the clients get its PEM text (they read no file), and a bad
            // value fails in check-config with the field's name instead of as an exception from a client constructor.
            try
            {
                options = options with
                {
                    CertPem = PemInput.ReadText(options.CertPem, "cert_pem"),
                    KeyPem = PemInput.ReadText(options.KeyPem, "key_pem"),
                    ServerCaPem = PemInput.ReadText(options.ServerCaPem, "server_ca_pem"),
                };
            }
            catch (ConfigException ex)
            {
                throw fail(ex.Message);
            }
            if (certAndKeyTogether && options.CertPem is null != options.KeyPem is null)
            {
                throw fail("tls.cert_pem and tls.key_pem must be set together");
            }
        }
        return options;
    }

    private static void ValidateTableName(string value, string field, Func<string, ConfigException> fail)
    {
        var parts = value.Split('.');
        if (parts.Length > 2 || !parts.All(p => Identifier().IsMatch(p)))
        {
            throw fail($"{field} \"{value}\" is not a valid table name: use name or schema.name, each part matching {Identifier()}");
        }

        if (parts.FirstOrDefault(p => p.Length > MaxIdentifierLength) is { } tooLong)
        {
            throw fail($"{field}: \"{tooLong}\" is longer than {MaxIdentifierLength} characters (PostgreSQL's identifier limit)");
        }
    }

    private static void ValidateTopic(string topic, string field, Func<string, ConfigException> fail)
    {
        if (!KafkaTopic().IsMatch(topic) || topic is "." or "..")
        {
            throw fail($"{field}: \"{topic}\" is not a valid Kafka topic name (1-249 characters of a-z, A-Z, 0-9, '.', '_', '-')");
        }
    }

    private static string OrDefault(string? value, string fallback) => string.IsNullOrEmpty(value) ? fallback : value;

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;

    public const string NamePattern = "^[a-zA-Z0-9_]{2,}$";

    public static bool IsValidName(string name) => ConsumerName().IsMatch(name);

    [GeneratedRegex(NamePattern)]
    private static partial Regex ConsumerName();

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]*$")]
    private static partial Regex Identifier();

    [GeneratedRegex("^[a-zA-Z0-9._-]{1,249}$")]
    private static partial Regex KafkaTopic();
}
