namespace Centrifugo.Actors.Outbox;

/// <summary>
/// Centrifugo (pgx) DSNs — URL form postgres://user:pass@host:port/db?sslmode=… or libpq key/value form
/// host=… user=… password=… — converted to Npgsql connection strings. STUB: implemented by the PostgreSQL work package.
/// </summary>
internal static class PostgresDsn
{
    /// <summary>Converts a pgx/libpq DSN to an Npgsql connection string. Throws FormatException whose message never contains the password.</summary>
    public static string ToNpgsqlConnectionString(string dsn) => throw new NotImplementedException();

    /// <summary>The DSN with its password (and any other secret parameter) replaced by "***"; unparsable input → "***".</summary>
    public static string Redact(string dsn) => throw new NotImplementedException();
}
