using Centrifugo.Actors.Configuration;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Delivery;

/// <summary>HTTP server-API client. STUB: implemented by the delivery work package.</summary>
internal sealed class CentrifugoClient : ICentrifugoClient, IDisposable
{
    public CentrifugoClient(ApiOptions options, ILogger<CentrifugoClient> logger)
    {
        _ = options; _ = logger;
    }

    public Task<DeliveryResult> DeliverAsync(IReadOnlyList<ApiCommand> commands, CancellationToken cancellationToken)
        => throw new NotImplementedException();

    public void Dispose() { }
}
