namespace Centrifugo.Actors.Configuration;

/// <summary>
/// A configuration the node cannot start with. The message is meant for a user: it names the
/// consumer and the field (e.g. "in consumer pg_main (postgresql): outbox_table_name is required")
/// and never contains a secret value.
/// </summary>
internal sealed class ConfigException : Exception
{
    public ConfigException(string message) : base(message) { }
    public ConfigException(string message, Exception inner) : base(message, inner) { }
}
