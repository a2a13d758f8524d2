using System.Globalization;
using System.Text;
using Npgsql;

namespace Centrifugo.Actors.Configuration;

/// <summary>
/// Centrifugo (pgx) DSNs — URL form postgres://user:pass@host:port/db?sslmode=… or libpq key/value form
/// host=… user=… password=… — converted to Npgsql connection strings.
/// </summary>
/// <remarks>
/// Only the parameters listed in <see cref="Apply"/> are understood; anything else is rejected with a
/// <see cref="FormatException"/> naming the parameter (pgx would forward unknown keys to the server as run-time
/// parameters; we refuse them so a typo does not silently change behaviour). A few pgx-only pool knobs that
/// have no Npgsql equivalent are accepted and ignored (<see cref="IgnoredPgxParameters"/>). pgx's
/// <c>default_query_exec_mode</c> (other than <c>cache_statement</c>) and <c>statement_cache_capacity=0</c> turn
/// Npgsql's automatic preparation off, as PgBouncer's transaction pooling needs.
/// Differences from pgx: no PG* environment variables and no service files are read; a missing host means
/// localhost; the pool size defaults to Npgsql's (100), not pgx's max(4, NumCPU).
/// Exception messages name parameters, never their values, so they never carry a password.
/// </remarks>
internal static class PostgresDsn
{
    private static readonly HashSet<string> SecretKeys = new(StringComparer.Ordinal) { "password", "sslpassword" };

    /// <summary>pgx pool/cache settings without an Npgsql counterpart: accepted so Centrifugo DSNs keep working.</summary>
    internal static readonly IReadOnlySet<string> IgnoredPgxParameters = new HashSet<string>(StringComparer.Ordinal)
    {
        "pool_health_check_period", "pool_max_conn_lifetime_jitter", "pool_min_idle_conns",
        "description_cache_capacity", "min_read_buffer_size",
    };

    /// <summary>pgx's <c>default_query_exec_mode</c> values; only <c>cache_statement</c> (pgx's default) prepares named
    /// statements.</summary>
    private static readonly HashSet<string> ExecModes = new(StringComparer.Ordinal)
    {
        "cache_statement", "cache_describe", "describe_exec", "exec", "simple_protocol",
    };

    /// <summary>Npgsql's automatic preparation (the counterpart of pgx's statement cache), unless the DSN turns it off.</summary>
    private const int AutoPrepareStatements = 16;

    /// <summary>Converts a pgx/libpq DSN to an Npgsql connection string. Throws FormatException whose message never contains the
    /// password.</summary>
    public static string ToNpgsqlConnectionString(string dsn) => ToBuilder(dsn).ConnectionString;

    /// <summary>Like <see cref="ToNpgsqlConnectionString"/>, returning the builder for further settings.</summary>
    internal static NpgsqlConnectionStringBuilder ToBuilder(string dsn)
    {
        ArgumentNullException.ThrowIfNull(dsn);
        var parameters = Parse(dsn);
        var builder = new NpgsqlConnectionStringBuilder();
        Apply(parameters, builder);
        return builder;
    }

    /// <summary>The DSN with its password (and any other secret parameter) replaced by "***"; unparsable input → "***".</summary>
    public static string Redact(string dsn)
    {
        if (string.IsNullOrWhiteSpace(dsn))
        {
            return "";
        }

        try
        {
            return IsUrl(dsn) ? RedactUrl(dsn) : RedactKeyValue(dsn);
        }
        catch (FormatException)
        {
            return "***";
        }
    }

    /// <summary>host[:port] of the first host, for error messages (never the password); "?" when unparsable.</summary>
    internal static string Endpoint(string dsn)
    {
        try
        {
            var b = ToBuilder(dsn);
            return $"{b.Host}:{b.Port.ToString(CultureInfo.InvariantCulture)}";
        }
        catch (FormatException)
        {
            return "?";
        }
    }

    private static bool IsUrl(string dsn) =>
        dsn.StartsWith("postgres://", StringComparison.OrdinalIgnoreCase) ||
        dsn.StartsWith("postgresql://", StringComparison.OrdinalIgnoreCase);

    /// <summary>Parses either form into libpq parameter names (user, password, host, port, dbname, …) in order.</summary>
    internal static List<KeyValuePair<string, string>> Parse(string dsn) =>
        IsUrl(dsn) ? ParseUrl(dsn) : ParseKeyValue(dsn);

    private static List<KeyValuePair<string, string>> ParseUrl(string dsn)
    {
        var result = new List<KeyValuePair<string, string>>();
        var rest = dsn[(dsn.IndexOf("://", StringComparison.Ordinal) + 3)..];

        var fragment = rest.IndexOf('#', StringComparison.Ordinal);
        if (fragment >= 0)
        {
            rest = rest[..fragment];
        }

        string? query = null;
        var q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }

        string? path = null;
        var slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            path = rest[(slash + 1)..];
            rest = rest[..slash];
        }

        // The user info ends at the LAST '@': passwords may contain unescaped '@' in hand-written DSNs.
        var at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = rest[..at];
            rest = rest[(at + 1)..];
            var colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            if (colon >= 0)
            {
                result.Add(new("user", Unescape(userInfo[..colon], "user")));
                result.Add(new("password", Unescape(userInfo[(colon + 1)..], "password")));
            }
            else if (userInfo.Length > 0)
            {
                result.Add(new("user", Unescape(userInfo, "user")));
            }
        }

        if (rest.Length > 0)
        {
            var hosts = new List<string>();
            var ports = new List<string>();
            foreach (var part in rest.Split(','))
            {
                var (host, port) = SplitHostPort(part);
                hosts.Add(Unescape(host, "host"));
                ports.Add(port);
            }

            result.Add(new("host", string.Join(',', hosts)));
            if (ports.Exists(p => p.Length > 0))
            {
                result.Add(new("port", string.Join(',', ports)));
            }
        }

        if (!string.IsNullOrEmpty(path))
        {
            result.Add(new("dbname", Unescape(path, "dbname")));
        }

        if (!string.IsNullOrEmpty(query))
        {
            foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = pair.IndexOf('=', StringComparison.Ordinal);
                if (eq <= 0)
                {
                    throw new FormatException("PostgreSQL DSN: a query parameter has no name or no '='.");
                }

                var key = Unescape(pair[..eq], "query parameter name", plusIsSpace: true);
                result.Add(new(key, Unescape(pair[(eq + 1)..], key, plusIsSpace: true)));
            }
        }

        return result;
    }

    private static (string Host, string Port) SplitHostPort(string part)
    {
        if (part.StartsWith('['))
        {
            var close = part.IndexOf(']', StringComparison.Ordinal);
            if (close < 0)
            {
                throw new FormatException("PostgreSQL DSN: unterminated '[' in an IPv6 host.");
            }

            var host = part[1..close];
            var after = part[(close + 1)..];
            return after.StartsWith(':') ? (host, after[1..]) : (host, "");
        }

        var colon = part.LastIndexOf(':');
        return colon >= 0 ? (part[..colon], part[(colon + 1)..]) : (part, "");
    }

    // Like Go's net/url: '+' means a space only in the query string, never in user info or path.
    private static string Unescape(string value, string what, bool plusIsSpace = false)
    {
        try
        {
            return Uri.UnescapeDataString(plusIsSpace ? value.Replace('+', ' ') : value);
        }
        catch (UriFormatException)
        {
            throw new FormatException($"PostgreSQL DSN: invalid percent-encoding in {what}.");
        }
    }

    private static List<KeyValuePair<string, string>> ParseKeyValue(string dsn)
    {
        var result = new List<KeyValuePair<string, string>>();
        var i = 0;
        while (true)
        {
            while (i < dsn.Length && char.IsWhiteSpace(dsn[i]))
            {
                i++;
            }

            if (i >= dsn.Length)
            {
                return result;
            }

            var keyStart = i;
            while (i < dsn.Length && dsn[i] != '=' && !char.IsWhiteSpace(dsn[i]))
            {
                i++;
            }

            var key = dsn[keyStart..i];
            var previous = result.Count == 0 ? null : result[^1].Key;
            while (i < dsn.Length && char.IsWhiteSpace(dsn[i]))
            {
                i++;
            }

            if (key.Length == 0 || i >= dsn.Length || dsn[i] != '=')
            {
                throw new FormatException(key.Length == 0
                    ? "PostgreSQL DSN: expected key=value pairs."
                    : $"PostgreSQL DSN: missing '=' after {Name(key, previous)}.");
            }

            i++;
            while (i < dsn.Length && char.IsWhiteSpace(dsn[i]))
            {
                i++;
            }

            var value = new StringBuilder();
            if (i < dsn.Length && dsn[i] == '\'')
            {
                i++;
                var closed = false;
                while (i < dsn.Length)
                {
                    var c = dsn[i++];
                    if (c == '\\' && i < dsn.Length)
                    {
                        value.Append(dsn[i++]);
                    }
                    else if (c == '\'')
                    {
                        closed = true;
                        break;
                    }
                    else
                    {
                        value.Append(c);
                    }
                }

                if (!closed)
                {
                    throw new FormatException($"PostgreSQL DSN: unterminated quoted value of {Name(key, previous)}.");
                }
            }
            else
            {
                while (i < dsn.Length && !char.IsWhiteSpace(dsn[i]))
                {
                    var c = dsn[i++];
                    if (c == '\\' && i < dsn.Length)
                    {
                        value.Append(dsn[i++]);
                    }
                    else
                    {
                        value.Append(c);
                    }
                }
            }

            result.Add(new(key, value.ToString()));
        }
    }

    // Parameter names come from the user too; a password pasted in the wrong place must not be echoed whole, and a
    // "name" right after a secret is most likely the rest of an unquoted secret with a space in it.
    private static string Name(string key, string? previous) => previous is not null && SecretKeys.Contains(previous)
        ? $"the word after the value of '{previous}' (a value with spaces needs single quotes: {previous}='…')"
        : $"parameter '{(key.Length <= 40 ? key : key[..40] + "…")}'";

    private static void Apply(List<KeyValuePair<string, string>> parameters, NpgsqlConnectionStringBuilder b)
    {
        string? hosts = null, ports = null, fallbackApplicationName = null;
        var prepare = true;
        string? previous = null;
        foreach (var (key, value) in parameters)
        {
            switch (key)
            {
                // What pgx users behind PgBouncer's transaction pooling set so that no named prepared statement is
                // used (a later transaction may run on a server connection that lacks it): turn Npgsql's off too.
                case "default_query_exec_mode":
                    prepare &= ExecModes.Contains(value)
                        ? value == "cache_statement"
                        : throw new FormatException("PostgreSQL DSN: parameter 'default_query_exec_mode' must be one of " +
                            $"{string.Join(", ", ExecModes.Order(StringComparer.Ordinal))}.");
                    break;
                case "statement_cache_capacity": prepare &= ParseInt(key, value, 0, int.MaxValue) > 0; break;
                case "host": hosts = value; break;
                case "port": ports = value; break;
                case "user": b.Username = value; break;
                case "password": b.Password = value; break;
                case "dbname": b.Database = value; break;
                case "sslmode": b.SslMode = ParseSslMode(value); break;
                case "sslrootcert": b.RootCertificate = value; break;
                case "sslcert": b.SslCertificate = value; break;
                case "sslkey": b.SslKey = value; break;
                case "sslpassword": b.SslPassword = value; break;
                case "connect_timeout": b.Timeout = ParseInt(key, value, 0, 1024); break;
                case "application_name": b.ApplicationName = value; break;
                case "fallback_application_name": fallbackApplicationName = value; break;
                case "search_path": b.SearchPath = value; break;
                case "options": b.Options = value; break;
                case "timezone": b.Timezone = value; break;
                case "client_encoding": b.ClientEncoding = value; break;
                case "target_session_attrs": b.TargetSessionAttributes = value; break;
                case "krbsrvname": b.KerberosServiceName = value; break;
                case "pool_max_conns": b.MaxPoolSize = ParseInt(key, value, 1, 10_000); break;
                case "pool_min_conns": b.MinPoolSize = ParseInt(key, value, 0, 10_000); break;
                case "pool_max_conn_lifetime": b.ConnectionLifetime = ParseSeconds(key, value); break;
                case "pool_max_conn_idle_time": b.ConnectionIdleLifetime = Math.Max(1, ParseSeconds(key, value)); break;
                case "keepalives_idle": b.TcpKeepAliveTime = ParseInt(key, value, 0, int.MaxValue); b.TcpKeepAlive = true; break;
                case "keepalives_interval": b.TcpKeepAliveInterval = ParseInt(key, value, 0, int.MaxValue); break;
                case "keepalives": b.TcpKeepAlive = value != "0"; break;
                default:
                    if (!IgnoredPgxParameters.Contains(key))
                    {
                        throw new FormatException($"PostgreSQL DSN: unsupported {Name(key, previous)}.");
                    }

                    break;
            }

            previous = key;
        }

        b.MaxAutoPrepare = prepare ? AutoPrepareStatements : 0;
        if (prepare)
        {
            b.AutoPrepareMinUsages = 2;
        }

        if (b.ApplicationName is null && fallbackApplicationName is not null)
        {
            b.ApplicationName = fallbackApplicationName;
        }

        b.Host = CombineHosts(hosts, ports, b);
    }

    private static string CombineHosts(string? hosts, string? ports, NpgsqlConnectionStringBuilder b)
    {
        var hostList = string.IsNullOrEmpty(hosts) ? ["localhost"] : hosts.Split(',');
        var portList = string.IsNullOrEmpty(ports) ? [] : ports.Split(',');
        if (portList.Length > 1 && portList.Length != hostList.Length)
        {
            throw new FormatException("PostgreSQL DSN: the number of ports does not match the number of hosts.");
        }

        foreach (var p in portList.Where(p => p.Length > 0))
        {
            ParseInt("port", p, 1, 65535);
        }

        if (hostList.Length == 1)
        {
            if (portList.Length == 1 && portList[0].Length > 0)
            {
                b.Port = int.Parse(portList[0], CultureInfo.InvariantCulture);
            }

            return hostList[0].Length == 0 ? "localhost" : hostList[0];
        }

        // Npgsql multi-host syntax: "h1:p1,h2:p2"; a host without a port uses Port (5432 unless a single port was given).
        var parts = new string[hostList.Length];
        for (var i = 0; i < hostList.Length; i++)
        {
            var host = hostList[i].Contains(':', StringComparison.Ordinal) ? $"[{hostList[i]}]" : hostList[i];
            var port = portList.Length == 0 ? "" : portList.Length == 1 ? portList[0] : portList[i];
            parts[i] = port.Length > 0 ? $"{host}:{port}" : host;
        }

        return string.Join(',', parts);
    }

    private static SslMode ParseSslMode(string value) => value switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "prefer" => SslMode.Prefer,
        "require" => SslMode.Require,
        "verify-ca" => SslMode.VerifyCA,
        "verify-full" => SslMode.VerifyFull,
        _ => throw new FormatException(
            "PostgreSQL DSN: sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full."),
    };

    private static int ParseInt(string key, string value, int min, int max) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new FormatException($"PostgreSQL DSN: parameter '{key}' must be an integer in [{min}, {max}].");

    /// <summary>Go duration ("90s", "1h30m", "500ms", through <see cref="GoDuration"/>) or plain seconds, rounded to whole
    /// seconds.</summary>
    private static int ParseSeconds(string key, string value)
    {
        if (int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var plain))
        {
            return plain;
        }

        if (!GoDuration.TryParse(value, out var duration, out _) || duration < TimeSpan.Zero)
        {
            throw new FormatException($"PostgreSQL DSN: parameter '{key}' must be a duration such as 30s or 1h.");
        }

        return (int)Math.Min(int.MaxValue, Math.Round(duration.TotalSeconds));
    }

    private static string RedactUrl(string dsn)
    {
        _ = ParseUrl(dsn); // validates the shape; throws FormatException when unparsable
        var schemeEnd = dsn.IndexOf("://", StringComparison.Ordinal) + 3;
        // A password may hold an unescaped '/', '?', '#' or '@' (parsers then see another host or path, but the
        // secret is still in the text): everything between the user name and the LAST '@' is masked, whatever it
        // holds. An '@' further right (a query value) only masks more than needed, never less.
        var prefix = "";
        var lastAt = dsn.LastIndexOf('@');
        if (lastAt >= schemeEnd)
        {
            var userinfo = dsn[schemeEnd..lastAt];
            var colon = userinfo.IndexOf(':', StringComparison.Ordinal);
            prefix = (colon >= 0 ? userinfo[..(colon + 1)] + "***" : userinfo) + "@";
            schemeEnd = lastAt + 1;
        }

        var authorityEnd = dsn.IndexOfAny(['/', '?', '#'], schemeEnd);
        if (authorityEnd < 0)
        {
            authorityEnd = dsn.Length;
        }

        var authority = prefix + dsn[schemeEnd..authorityEnd];

        var tail = dsn[authorityEnd..];
        var q = tail.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            var pairs = tail[(q + 1)..].Split('&');
            for (var i = 0; i < pairs.Length; i++)
            {
                var eq = pairs[i].IndexOf('=', StringComparison.Ordinal);
                if (eq > 0 && SecretKeys.Contains(Unescape(pairs[i][..eq], "query parameter name", plusIsSpace: true)))
                {
                    pairs[i] = pairs[i][..(eq + 1)] + "***";
                }
            }

            tail = tail[..(q + 1)] + string.Join('&', pairs);
        }

        return dsn[..(dsn.IndexOf("://", StringComparison.Ordinal) + 3)] + authority + tail;
    }

    private static string RedactKeyValue(string dsn)
    {
        var parts = ParseKeyValue(dsn).Select(p =>
        {
            var value = SecretKeys.Contains(p.Key) ? "***" : p.Value;
            return $"{p.Key}={Quote(value)}";
        });
        return string.Join(' ', parts);
    }

    private static string Quote(string value) =>
        value.Length > 0 && !value.Any(c => char.IsWhiteSpace(c) || c is '\'' or '\\')
            ? value
            : "'" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("'", "\\'", StringComparison.Ordinal) + "'";
}
