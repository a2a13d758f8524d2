using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Reads a Centrifugo-format JSON config + env overrides into validated <see cref="NodeOptions"/>.
/// Pipeline: parse → top-level key check → env overrides applied to the JSON → schema/type checks →
/// Centrifugo defaults and zero-rules → validation. The first problem found is thrown as one
/// <see cref="ConfigException"/> whose message names the section/consumer and the field, never a value of a
/// secret field.
/// </summary>
internal static partial class ConfigLoader
{
    public const string DefaultApiUrl = "http://127.0.0.1:8000/api";

    /// <summary>Loads, applies env overrides and defaults, validates. Throws <see cref="ConfigException"/>.</summary>
    public static NodeOptions Load(string path, IDictionary environment)
    {
        string json;
        try
        {
            json = File.ReadAllText(path);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new ConfigException($"config file not found: {path}", ex);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new ConfigException($"cannot read config file {path}: {ex.Message}", ex);
        }

        return Bind(Parse(json, $"config file {path}"), environment);
    }

    /// <summary>Same from JSON text (tests, stdin).</summary>
    public static NodeOptions LoadFromJson(string json, IDictionary environment) => Bind(Parse(json, "config"), environment);

    /// <summary>The effective configuration as indented JSON in Centrifugo's key names, every secret replaced by "***".</summary>
    public static string ToRedactedJson(NodeOptions options) => RedactedConfigWriter.Write(options);

    internal static string TrimJsonMessage(JsonException ex)
    {
        // System.Text.Json appends " Path: $.x | LineNumber: 0 | BytePositionInLine: 3."; we report those ourselves.
        var message = ex.Message;
        var cut = message.IndexOf(" Path:", StringComparison.Ordinal);
        return (cut >= 0 ? message[..cut] : message).Trim();
    }

    private static JsonObject Parse(string json, string source)
    {
        JsonNode? root;
        try
        {
            root = JsonFields.ParseLastKeyWins(json);
        }
        catch (JsonException ex)
        {
            throw new ConfigException(
                $"{source} is not valid JSON at line {(ex.LineNumber ?? 0) + 1}, position {(ex.BytePositionInLine ?? 0) + 1}: " +
                $"{TrimJsonMessage(ex)}",
                ex);
        }

        return root as JsonObject
            ?? throw new ConfigException($"{source}: expected a JSON object at the top level, got {JsonFields.Describe(root)}");
    }

    private static NodeOptions Bind(JsonObject root, IDictionary environment)
    {
        CheckTopLevelKeys(root);
        var env = new EnvOverrides(environment);
        return new NodeOptions
        {
            Api = BindApi(root, env),
            Consumers = ConsumerBinder.Bind(root["consumers"], env),
            Cluster = BindCluster(root, env),
            Admin = BindAdmin(root, env),
            Log = LogConfig.Bind(root, env),
        };
    }

    private static void CheckTopLevelKeys(JsonObject root)
    {
        foreach (var (key, _) in root)
        {
            if (!ConfigSchema.OwnSections.Contains(key) && !CentrifugoKeys.IsKnownTopLevel(key))
            {
                var hint = JsonFields.Suggest(key, ConfigSchema.OwnSections.Concat(CentrifugoKeys.V6));
                throw new ConfigException(
                    $"unknown top-level key \"{key}\"{hint}: " +
                    "it is neither a Centrifugo.Actors section (api, consumers, cluster, admin) nor a Centrifugo key");
            }
        }
    }

    private static JsonObject Section(JsonObject root, string name, IReadOnlyList<FieldSpec> fields, Func<string, ConfigException> fail)
    {
        var node = root[name];
        if (node is not null and not JsonObject)
        {
            throw new ConfigException($"{name}: expected an object, got {JsonFields.Describe(node)}");
        }

        // A copy: env overrides must not leak into the caller's tree or between loads.
        var section = (JsonObject?)node?.DeepClone() ?? new JsonObject();
        JsonFields.Check(section, fields, "", "", fail);
        return section;
    }

    private static ApiOptions BindApi(JsonObject root, EnvOverrides env)
    {
        static ConfigException Fail(string m) => new($"in api: {m}");
        var api = Section(root, "api", ConfigSchema.Api, Fail);
        env.ApplySection(api, ConfigSchema.Api, "CENTRIFUGO_API_");

        var url = JsonFields.String(api, "url") ?? DefaultApiUrl;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) ||
            !string.IsNullOrEmpty(uri.Query) || !string.IsNullOrEmpty(uri.Fragment))
        {
            // Not echoed: a URL may carry user:password.
            throw Fail($"url is not an absolute http:// or https:// URL without query, e.g. {DefaultApiUrl}");
        }

        var key = JsonFields.String(api, "key") is { Length: > 0 } own ? own : FallbackApiKey(root, env);
        if (string.IsNullOrEmpty(key))
        {
            throw Fail(
                "key is required: Centrifugo answers 401 to every server API request when the key is empty. " +
                "Set api.key (or keep http_api.key / api_key of your Centrifugo config in the same file) " +
                "or the CENTRIFUGO_API_KEY environment variable");
        }

        var apiDefaults = new ApiOptions { Url = "", Key = "" };
        var timeout = JsonFields.Duration(api, "timeout", Fail) ?? apiDefaults.Timeout;
        if (timeout <= TimeSpan.Zero)
        {
            throw Fail($"timeout must be positive, got {GoDuration.Format(timeout)}");
        }

        var batch = JsonFields.Int(api, "max_batch_size") ?? apiDefaults.MaxBatchSize;
        if (batch is < 1 or > 1000)
        {
            throw Fail($"max_batch_size must be between 1 and 1000, got {batch}");
        }

        return new ApiOptions { Url = url.TrimEnd('/'), Key = key, Timeout = timeout, MaxBatchSize = batch };
    }

    /// <summary>Centrifugo's own API key from the same config: v6 http_api.key, its env, then v5 api_key.</summary>
    private static string? FallbackApiKey(JsonObject root, EnvOverrides env)
    {
        if (JsonFields.String(JsonFields.Object(root, "http_api"), "key") is { Length: > 0 } v6)
        {
            return v6;
        }

        if (env.Get("CENTRIFUGO_HTTP_API_KEY") is { } v6Env)
        {
            return v6Env;
        }

        return JsonFields.String(root, "api_key") is { Length: > 0 } v5 ? v5 : null;
    }

    private static ClusterOptions BindCluster(JsonObject root, EnvOverrides env)
    {
        static ConfigException Fail(string m) => new($"in cluster: {m}");
        var cluster = Section(root, "cluster", ConfigSchema.Cluster, Fail);
        env.ApplySection(cluster, ConfigSchema.Cluster, "CENTRIFUGO_ACTORS_CLUSTER_");
        var defaults = new ClusterOptions();

        var systemName = JsonFields.String(cluster, "system_name") ?? defaults.SystemName;
        if (!ActorSystemName().IsMatch(systemName))
        {
            throw Fail($"system_name \"{systemName}\" is invalid: it must match {ActorSystemName()} (Akka actor system name)");
        }

        var hostname = JsonFields.String(cluster, "hostname") ?? defaults.Hostname;
        if (string.IsNullOrWhiteSpace(hostname))
        {
            throw Fail("hostname must not be empty");
        }

        var port = JsonFields.Int(cluster, "port") ?? defaults.Port;
        if (port is < 0 or > 65535)
        {
            throw Fail($"port must be between 0 and 65535, got {port}");
        }

        var seeds = JsonFields.StringList(cluster, "seed_nodes") ?? defaults.SeedNodes;
        foreach (var seed in seeds)
        {
            if (!Uri.TryCreate(seed, UriKind.Absolute, out var uri) || uri.Scheme != "akka.tcp" || string.IsNullOrEmpty(uri.UserInfo) ||
                uri.IsDefaultPort || uri.Port <= 0 || string.IsNullOrEmpty(uri.Host))
            {
                throw Fail($"seed_nodes: \"{seed}\" is not an Akka address like akka.tcp://{systemName}@host:4053");
            }

            if (uri.UserInfo != systemName)
            {
                throw Fail($"seed_nodes: \"{seed}\" names actor system \"{uri.UserInfo}\" but system_name is \"{systemName}\"; " +
                    "all nodes must use the same name");
            }
        }

        var shards = JsonFields.Int(cluster, "number_of_shards") ?? defaults.NumberOfShards;
        if (shards is < 1 or > 100_000)
        {
            throw Fail($"number_of_shards must be between 1 and 100000, got {shards}");
        }

        TimeSpan Between(string key, TimeSpan value, TimeSpan min, TimeSpan max) =>
            value >= min && value <= max ? value
                : throw Fail(
                    $"{key} must be between {GoDuration.Format(min)} and {GoDuration.Format(max)}, got {GoDuration.Format(value)}");
        var heartbeat = Between("heartbeat_interval",
            JsonFields.Duration(cluster, "heartbeat_interval", Fail) ?? defaults.HeartbeatInterval,
            TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(10));
        var pause = Between("acceptable_heartbeat_pause",
            JsonFields.Duration(cluster, "acceptable_heartbeat_pause", Fail) ?? defaults.AcceptableHeartbeatPause,
            TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(1));
        if (pause < heartbeat)
        {
            throw Fail($"acceptable_heartbeat_pause ({GoDuration.Format(pause)}) " +
                $"must be at least heartbeat_interval ({GoDuration.Format(heartbeat)})");
        }
        var stableAfter = Between("downing_stable_after",
            JsonFields.Duration(cluster, "downing_stable_after", Fail) ?? defaults.DowningStableAfter,
            TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(5));
        var rebalance = Between("rebalance_interval",
            JsonFields.Duration(cluster, "rebalance_interval", Fail) ?? defaults.RebalanceInterval,
            TimeSpan.FromMilliseconds(500), TimeSpan.FromMinutes(10));

        var (discovery, bootstrap) = BootstrapConfig.Bind(cluster, hostname, seeds.Count > 0, Fail);
        return new ClusterOptions
        {
            SystemName = systemName,
            Hostname = hostname,
            Port = port,
            SeedNodes = seeds,
            NumberOfShards = shards,
            HeartbeatInterval = heartbeat,
            AcceptableHeartbeatPause = pause,
            DowningStableAfter = stableAfter,
            RebalanceInterval = rebalance,
            PostgresLiveness = JsonFields.Bool(cluster, "postgres_liveness") ?? defaults.PostgresLiveness,
            PodName = JsonFields.String(cluster, "pod_name") ?? defaults.PodName,
            Discovery = discovery,
            Bootstrap = bootstrap,
        };
    }

    private static AdminOptions BindAdmin(JsonObject root, EnvOverrides env)
    {
        static ConfigException Fail(string m) => new($"in admin: {m}");

        // Centrifugo v5's top-level "admin" is a bool (its web UI switch): not ours, ignore it.
        var node = root["admin"];
        var source = node is JsonObject ? root : new JsonObject();
        var admin = Section(source, "admin", ConfigSchema.Admin, Fail);
        env.ApplySection(admin, ConfigSchema.Admin, "CENTRIFUGO_ACTORS_ADMIN_");

        var address = JsonFields.String(admin, "address") ?? new AdminOptions().Address;
        var token = JsonFields.String(admin, "token") ?? "";
        if (address.Length == 0)
        {
            return new AdminOptions { Address = address, Token = token };
        }
        if (!IsHostPort(address))
        {
            throw Fail(
                $"address \"{address}\" must be host:port (e.g. 127.0.0.1:9110 or 0.0.0.0:9110), or \"\" to disable the admin endpoint");
        }
        if (!AdminOptions.TryParseEndpoint(address, out var endpoint))
        {
            throw Fail($"address \"{address}\": " +
                "the host must be an IP address, localhost or 0.0.0.0 (the endpoint binds to a local interface, not a DNS name)");
        }
        if (token.Length > 0 && token.Length < 16)
        {
            throw Fail("token must be at least 16 characters");
        }
        if (!System.Net.IPAddress.IsLoopback(endpoint.Address) && token.Length == 0)
        {
            throw Fail($"token is required when address binds beyond loopback ({address}): the admin endpoint accepts cluster " +
                "leave/down; set admin.token or CENTRIFUGO_ACTORS_ADMIN_TOKEN (from a Secret), or bind 127.0.0.1");
        }

        return new AdminOptions { Address = address, Token = token };
    }

    internal static bool IsHostPort(string value)
    {
        var colon = value.LastIndexOf(':');
        if (colon <= 0)
        {
            return false;
        }

        var host = value[..colon];
        if (host.StartsWith('[') != host.EndsWith(']') || (host.Contains(':', StringComparison.Ordinal) && !host.StartsWith('[')))
        {
            return false;
        }

        return int.TryParse(value[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var port)
            && port is >= 0 and <= 65535;
    }

    [GeneratedRegex("^[a-zA-Z0-9][a-zA-Z0-9_-]*$")]
    private static partial Regex ActorSystemName();
}
