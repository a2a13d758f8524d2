using Akka.Actor;
using Akka.Dispatch;
using Akka.Event;
using Microsoft.Extensions.Logging;
using MsLogLevel = Microsoft.Extensions.Logging.LogLevel;

namespace Centrifugo.Actors.Hosting;

/// <summary>The ILoggerFactory Akka's own log events go to (an ActorSystem setup, so each node in a process keeps its own).</summary>
internal sealed class AkkaLogBridgeSetup(ILoggerFactory loggerFactory) : Akka.Actor.Setup.Setup
{
    public ILoggerFactory LoggerFactory { get; } = loggerFactory;
}

/// <summary>
/// Akka logger actor: every Akka log event becomes one Microsoft.Extensions.Logging entry in the category of its
/// class (or <c>Akka</c> for string sources), event id 1900, with the Akka source as a structured field and the plain
/// message: no second timestamp/level/thread prefix (Akka.Hosting's bridge wrote Akka's own
/// "[INFO][date][Thread][source]" header inside the message, doubling the console formatter's).
/// </summary>
internal sealed class AkkaLogBridge : ActorBase, IRequiresMessageQueue<ILoggerMessageQueueSemantics>
{
    private readonly ILoggerFactory _loggerFactory;
    private readonly Dictionary<Type, ILogger> _loggers = [];

    public AkkaLogBridge()
    {
        var setup = Context.System.Settings.Setup.Get<AkkaLogBridgeSetup>();
        _loggerFactory = setup.HasValue ? setup.Value.LoggerFactory : Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance;
    }

    protected override bool Receive(object message)
    {
        switch (message)
        {
            case InitializeLogger:
                Sender.Tell(new LoggerInitialized());
                return true;
            case LogEvent e:
                if (!_loggers.TryGetValue(e.LogClass, out var logger))
                {
                    // String sources (most of Akka's own lines) all come as DummyClassForStringSources: category "Akka".
                    logger = _loggerFactory.CreateLogger(
                        e.LogClass == typeof(DummyClassForStringSources) ? "Akka" : e.LogClass.FullName ?? "Akka");
                    _loggers[e.LogClass] = logger;
                }
                HostingLog.AkkaMessage(logger, Level(e.LogLevel()), e.Cause, e.LogSource, Format(e.Message));
                return true;
            default:
                return false;
        }
    }

    private static string Format(object message)
    {
        try
        {
            return (message is LogMessage m ? m.ToString() : message?.ToString()) ?? "";
        }
        catch (FormatException ex)
        {
            return $"(unformattable Akka log message: {ex.Message})";
        }
    }

    private static MsLogLevel Level(Akka.Event.LogLevel level) => level switch
    {
        Akka.Event.LogLevel.DebugLevel => MsLogLevel.Debug,
        Akka.Event.LogLevel.InfoLevel => MsLogLevel.Information,
        Akka.Event.LogLevel.WarningLevel => MsLogLevel.Warning,
        _ => MsLogLevel.Error,
    };

    /// <summary>The Akka log level that lets through what <paramref name="level"/> shows.</summary>
    public static Akka.Event.LogLevel AkkaLevel(MsLogLevel level) => level switch
    {
        <= MsLogLevel.Debug => Akka.Event.LogLevel.DebugLevel,
        MsLogLevel.Information => Akka.Event.LogLevel.InfoLevel,
        MsLogLevel.Warning => Akka.Event.LogLevel.WarningLevel,
        _ => Akka.Event.LogLevel.ErrorLevel,
    };
}
