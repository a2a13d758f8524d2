namespace Centrifugo.Actors;

/// <summary>
/// The node cannot start because something a consumer needs did not answer or refused it at start-up: its database
/// (unreachable, or the outbox table missing) or every one of its Kafka brokers. Unlike a
/// <see cref="Configuration.ConfigException"/>, the same configuration may start once that is back. The message is
/// meant for a user: it names the consumer and what failed, and never contains a secret value.
/// </summary>
internal sealed class StartupException(string message, Exception inner) : Exception(message, inner);
