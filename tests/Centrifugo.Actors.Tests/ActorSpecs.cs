namespace Centrifugo.Actors.Tests;

/// <summary>The actor system configuration of the actor-level specs: no remoting, no cluster, Akka's logs at INFO.</summary>
internal static class ActorSpecs
{
    public const string Config = """
        akka.loglevel = INFO
        akka.coordinated-shutdown.run-by-clr-shutdown-hook = off
        """;
}
